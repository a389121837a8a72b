// Command kube-apiserver is upstream's kube-apiserver main, built from the
// k8s.io/kubernetes module so tests get a real API server without containers.
package main

import (
	"os"
	_ "time/tzdata" // upstream embeds it for CronJob time zones

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
