// Command etcd is the upstream etcd server main, built from the Go module
// proxy for augur's integration tests (see ../../build.sh).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
