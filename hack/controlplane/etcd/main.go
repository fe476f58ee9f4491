// Command etcd is the upstream etcd server, built from the published
// go.etcd.io/etcd/server/v3 module (its own go.mod cannot be `go install`ed
// because of local replace directives).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
