// Command ragbot-etcd runs a single-member embedded etcd on loopback for the
// upstream test cluster (tests/upstream). It is glue only: every behaviour is
// go.etcd.io/etcd/server/v3/embed at the version pinned in go.mod.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		log.Fatalf("bad url %q: %v", s, err)
	}
	return *u
}

func main() {
	dataDir := flag.String("data-dir", "", "data directory (required)")
	name := flag.String("name", "node0", "member name")
	client := flag.String("listen-client-url", "http://127.0.0.1:2379", "client URL (listen and advertise)")
	peer := flag.String("listen-peer-url", "http://127.0.0.1:2380", "peer URL (listen and advertise)")
	noFsync := flag.Bool("unsafe-no-fsync", true, "skip fsync (tests only)")
	quota := flag.Int64("quota-backend-bytes", 8<<30, "backend quota in bytes")
	compaction := flag.String("auto-compaction-retention", "1", "auto compaction retention (periodic mode, hours)")
	logLevel := flag.String("log-level", "warn", "etcd log level")
	flag.Parse()
	if *dataDir == "" {
		log.Fatal("--data-dir is required")
	}

	cfg := embed.NewConfig()
	cfg.Name = *name
	cfg.Dir = *dataDir
	cfg.ListenClientUrls = []url.URL{mustURL(*client)}
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	cfg.ListenPeerUrls = []url.URL{mustURL(*peer)}
	cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name) // NewConfig's value names localhost:2380
	cfg.UnsafeNoFsync = *noFsync
	cfg.QuotaBackendBytes = *quota
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = *compaction
	cfg.LogLevel = *logLevel
	// NewConfig leaves this at 0 (etcdmain sets it from its flag), which logs every request.
	cfg.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatalf("start etcd: %v", err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
		fmt.Printf("etcd ready on %s\n", *client)
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		log.Fatal("etcd did not become ready within 60s")
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		fmt.Printf("etcd stopping on %v\n", s)
	case err := <-e.Err():
		log.Fatalf("etcd: %v", err)
	}
}
