// Package e2e is kubepim's end-to-end suite: the built manager runs as its
// own processes (two replicas, leader election on) against the dev control
// plane of hack/dev.sh, and the suite drives it with kubectl only, as real
// users authenticated by client certificates of the dev CA. Faults are
// injected with hack/dev.sh kill|stop|start. Its files carry the build tag
// e2e, so `go test ./...` skips them; run it with `make e2e` (hack/e2e.sh
// starts the control plane and always stops it).
package e2e
