// Command kube-controller-manager is upstream's kube-controller-manager main;
// tests need its PV binder, not a fake, to bind claims the way clusters do.
package main

import (
	"os"
	_ "time/tzdata" // upstream embeds it for CronJob time zones

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
