// The pod sandbox's process, as Kubernetes' build/pause: it holds the pod's namespaces and
// does nothing else, until SIGINT or SIGTERM. Built here so the node never pulls an image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		os.Stdout.WriteString("pause (piko-k8s test node)\n")
		return
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	// As PID 1 of the sandbox it also reaps the orphans that end up with it.
	signal.Ignore(syscall.SIGCHLD)
	<-signals
}
