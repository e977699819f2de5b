package jetstream

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// nodeEnv, when set, makes the test binary a cluster node (see runNode);
// it holds the node's server name.
const nodeEnv = "FJORD_NATS_NODE"

// runNode runs one nats-server cluster node from the environment the
// cluster test set, prints "ready" and serves until it is killed.
func runNode() {
	port, _ := strconv.Atoi(os.Getenv("FJORD_NATS_PORT"))
	cport, _ := strconv.Atoi(os.Getenv("FJORD_NATS_CLUSTER_PORT"))
	opts := &server.Options{
		ServerName: os.Getenv(nodeEnv),
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   os.Getenv("FJORD_NATS_DIR"),
		Cluster:    server.ClusterOpts{Name: "fjord-test", Host: "127.0.0.1", Port: cport},
		Routes:     server.RoutesFromStr(os.Getenv("FJORD_NATS_ROUTES")),
	}
	s, err := server.NewServer(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(2)
	}
	if os.Getenv("FJORD_NATS_LOG") != "" {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		fmt.Fprintln(os.Stderr, "node: not ready after 10 s")
		os.Exit(2)
	}
	fmt.Println("ready", strings.TrimSpace(s.ClientURL()))
	s.WaitForShutdown()
}
