// Command kube-all is a multi-call binary holding the Kubernetes control
// plane used by gpuctl's tests: etcd, kube-apiserver, kube-scheduler and
// kube-controller-manager, plus a small "mknodes" helper that creates the
// simulated (kwok-managed) nodes quickly. The component is chosen by the
// first argument, or by the name the binary is invoked as.
package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	_ "time/tzdata" // for timeZone support in CronJob

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go prometheus plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric registration
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func usage() {
	fmt.Fprintf(os.Stderr, "usage: kube-all {etcd|kube-apiserver|kube-scheduler|kube-controller-manager|mknodes|freeports N} [flags...]\n")
	os.Exit(2)
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "kube-all" || !strings.HasPrefix(name, "kube-") && name != "etcd" && name != "mknodes" {
		if len(args) == 0 {
			usage()
		}
		name, args = args[0], args[1:]
	}
	// Each component parses os.Args[1:] itself (cobra), so shift the
	// component name out.
	os.Args = append([]string{name}, args...)

	switch name {
	case "etcd":
		etcdmain.Main(os.Args)
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "mknodes":
		os.Exit(mknodes(args))
	case "freeports":
		os.Exit(freeports(args))
	default:
		usage()
	}
}

// freeports prints N distinct free TCP ports on 127.0.0.1, one a line. All
// listeners are held open until every port is chosen, so they differ.
func freeports(args []string) int {
	n := 1
	if len(args) > 0 {
		var err error
		if n, err = strconv.Atoi(args[0]); err != nil || n < 1 || n > 100 {
			fmt.Fprintf(os.Stderr, "freeports: bad count %q\n", args[0])
			return 2
		}
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintf(os.Stderr, "freeports: %v\n", err)
			return 1
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return 0
}
