// Command kube-scheduler is upstream's kube-scheduler main; tests need a real
// scheduler to place Pods on the Node objects they register (there is no kubelet),
// and to pick a node for WaitForFirstConsumer claims as clusters do.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	os.Exit(cli.Run(app.NewSchedulerCommand()))
}
