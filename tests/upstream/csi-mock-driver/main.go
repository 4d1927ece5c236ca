// Command csi-mock-driver serves Kubernetes' own e2e CSI mock driver
// (k8s.io/kubernetes/test/e2e/storage/drivers/csi-test, the csi-test mock that the
// csi-mock e2e tests embed) on a unix socket, under the driver name the seed's
// StorageClass and VolumeSnapshotClass use. Volumes and snapshots live in memory:
// CreateVolume (also from a snapshot), DeleteVolume, CreateSnapshot, DeleteSnapshot and
// ListSnapshots are what external-provisioner and csi-snapshotter call. We run it because
// the module proxy refuses every version of github.com/kubernetes-csi/csi-driver-host-path
// (README: "Volumes").
package main

import (
	"flag"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/klog/v2"
	mockdriver "k8s.io/kubernetes/test/e2e/storage/drivers/csi-test/driver"
	mockservice "k8s.io/kubernetes/test/e2e/storage/drivers/csi-test/mock/service"
)

func main() {
	klog.InitFlags(nil)
	name := flag.String("drivername", mockservice.Name, "CSI driver name (GetPluginInfo)")
	endpoint := flag.String("endpoint", "", "unix://PATH of the CSI socket")
	attach := flag.Bool("enable-attach", false, "advertise PUBLISH_UNPUBLISH_VOLUME (needs an external-attacher)")
	flag.Parse()
	path, ok := strings.CutPrefix(*endpoint, "unix://")
	if !ok || path == "" {
		klog.Fatalf("--endpoint must be unix://PATH, got %q", *endpoint)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		klog.Fatalf("remove stale socket: %v", err)
	}
	s := mockservice.New(mockservice.Config{DriverName: *name, DisableAttach: !*attach})
	d := mockdriver.NewCSIDriver(&mockdriver.CSIDriverServers{Controller: s, Identity: s, Node: s})
	l, err := net.Listen("unix", path)
	if err != nil {
		klog.Fatalf("listen %s: %v", path, err)
	}
	if err := d.Start(l, nil); err != nil {
		klog.Fatalf("start: %v", err)
	}
	klog.Infof("CSI mock driver %s serving on %s", *name, *endpoint)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	d.Stop()
	_ = os.Remove(path)
}
