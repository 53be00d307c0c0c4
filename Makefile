# kubepim Makefile. `make test` is the test command (test-go, then e2e and e2e-authorizer); `make dev` the main one.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

export GOTOOLCHAIN := local

IMG ?= ghcr.io/kubepim/kubepim:latest
LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_TOOLS_VERSION ?= v0.23.0
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
K8S_VERSION ?= 1.37.2
ENVTEST_ASSETS ?= $(LOCALBIN)/k8s/$(K8S_VERSION)
HELM_VERSION ?= v3.22.0
# kube-api-linter has no releases: a pseudo-version from the module proxy
# (go list -m sigs.k8s.io/kube-api-linter@latest). Its standalone binary is
# golangci-lint v2 with KAL built in as the module linter "kubeapilinter".
KAL_VERSION ?= v0.0.0-20260716143926-092fe0c72997
GOLANGCI_KAL ?= $(LOCALBIN)/golangci-lint-kube-api-linter-$(KAL_VERSION)
# helm on PATH if there is one, else built once from the Go module proxy
# into bin/ (see the helm target).
HELM ?= $(shell command -v helm 2>/dev/null || echo $(LOCALBIN)/helm-$(HELM_VERSION))
GINKGO_FLAGS ?=

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs, RBAC and webhook configuration.
	$(CONTROLLER_GEN) rbac:roleName=kubepim-manager crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases
	hack/sync-chart.sh
	hack/gen-argocd-cm.sh

.PHONY: generate
generate: controller-gen ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet -tags e2e ./...

.PHONY: lint
lint: fmt vet golangci-kal ## gofmt check, go vet, and kube-api-linter on api/ (.golangci.yml).
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GOLANGCI_KAL) run ./...

.PHONY: verify
verify: manifests generate ## Regenerate and fail if anything generated is out of date.
	@git diff --exit-code -- api config charts || { echo "generated files are out of date: run 'make manifests generate' and commit"; exit 1; }

.PHONY: control-plane
control-plane: ## Build kube-apiserver and etcd into bin/ (once).
	@hack/install-control-plane.sh >/dev/null

.PHONY: test
test: ## The test command (CI runs it): test-go, then the e2e suite in both access modes.
	$(MAKE) test-go
	$(MAKE) e2e
	$(MAKE) e2e-authorizer

.PHONY: test-go
test-go: manifests generate lint control-plane helm-check chromium ## Every Go test: table tests and the envtest suites against a real kube-apiserver and etcd; each fuzz target briefly.
	KUBEBUILDER_ASSETS="$$(hack/install-control-plane.sh)" HELM="$(HELM)" go test ./... -count=1 -timeout 25m $(GINKGO_FLAGS)
	$(MAKE) fuzz FUZZTIME=3s

# The console's browser suite (cmd/console) drives a headless Chromium:
# Debian's package, installed here when missing (CI runs as root with
# apt); elsewhere install it yourself or point CHROMIUM at a Chrome.
.PHONY: chromium
chromium: ## Install Chromium for the console's browser suite when it is missing (apt-get, as root).
	@if [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the console's browser suite (about 30 s)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "the console's browser suite (cmd/console) needs Chromium: apt-get install chromium (as root), or set CHROMIUM=/path/to/chrome"; exit 1; \
	fi

# Go native fuzz targets (package:Target) for the pure functions that parse
# user input; docs/threat-model.md lists them.
FUZZ_TARGETS := \
	./internal/approval:FuzzParseReview \
	./internal/approval:FuzzParseApprovals \
	./internal/approval:FuzzVerifyTiming \
	./internal/policy:FuzzActivationWindow \
	./webhooks:FuzzParseReviewDecision
FUZZTIME ?= 1m

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 1m; make test uses 3s).
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t%%:*} $${t##*:} for $(FUZZTIME)"; \
		go test "$${t%%:*}" -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

# The chart's main switches; test/chart applies the same renderings to a real
# API server.
HELM_CHECK_VALUES := "" \
	"--set certManager.enabled=true" \
	"--set certManager.enabled=true --set certManager.issuerRef.name=ca --set certManager.issuerRef.kind=ClusterIssuer" \
	"--set crds.enabled=false --set crds.keep=false" \
	"--set metrics.serviceMonitor.enabled=true" \
	"--set metrics.secure=false --set replicaCount=1 --set userRoles.create=false" \
	"--set accessMode=authorizer --set webhook.clusterIP=10.96.0.50" \
	"--set console.enabled=true --set console.url=https://pim.example.com --set console.issuerURL=https://login.example.com --set console.clientSecret.secretName=console --set console.sessionKeys.secretName=console --set console.ingress.enabled=true --set console.tlsSecretName=console-tls --set console.issuerCA.configMap=issuer-ca"

.PHONY: helm-check
helm-check: helm ## helm lint --strict and helm template of charts/kubepim with its main switches.
	@for v in $(HELM_CHECK_VALUES); do \
		echo "helm lint/template charts/kubepim $$v"; \
		$(HELM) lint --strict --quiet --kube-version $(K8S_VERSION) charts/kubepim $$v >/dev/null || { $(HELM) lint --strict --kube-version $(K8S_VERSION) charts/kubepim $$v; exit 1; }; \
		$(HELM) template kubepim charts/kubepim --namespace kubepim-system --kube-version $(K8S_VERSION) $$v >/dev/null; \
	done

.PHONY: e2e
e2e: build control-plane ## End-to-end suite with fault injection: bin/manager x2 on a control plane of its own, driven by kubectl (~3 min).
	hack/e2e.sh

.PHONY: e2e-authorizer
e2e-authorizer: build control-plane ## The authorizer-mode e2e specs (kube-apiserver --authorization-config, --access-mode=authorizer; kill -9, hang, apiserver restart; ~2 min).
	E2E_ACCESS_MODE=authorizer hack/e2e.sh

.PHONY: ci
ci: test ## Same as make test.

.PHONY: bench
bench: control-plane ## Benchmark the manager end to end against a real API server, ~16 min (BENCH_FLAGS="-scale 5000" for less; docs/performance.md).
	KUBEBUILDER_ASSETS="$$(hack/install-control-plane.sh)" go run ./test/bench $(BENCH_FLAGS)

##@ Build

.PHONY: build
build: generate ## Build the manager, the console and the kubectl plugin.
	go build -o $(LOCALBIN)/manager ./cmd/manager
	go build -o $(LOCALBIN)/console ./cmd/console
	@if ls cmd/kubectl-pim/*.go >/dev/null 2>&1; then go build -o $(LOCALBIN)/kubectl-pim ./cmd/kubectl-pim; fi

.PHONY: run
run: manifests generate ## Run the manager against the current kubeconfig.
	go run ./cmd/manager

.PHONY: docker-build
docker-build: ## Build the container image (needs a container engine).
	docker build -t $(IMG) .

##@ Local control plane

.PHONY: dev
dev: build control-plane ## Run a local control plane with kubepim in the foreground (Ctrl-C stops it).
	hack/dev.sh run

.PHONY: dev-up
dev-up: build control-plane ## Start the local control plane with kubepim in the background.
	hack/dev.sh up

.PHONY: dev-down
dev-down: ## Stop the local control plane.
	hack/dev.sh down

##@ Tools

# golangci-lint with kube-api-linter, built once from the Go module proxy
# (about 2 min cold on 2 cores).
.PHONY: golangci-kal
golangci-kal: $(GOLANGCI_KAL)
$(GOLANGCI_KAL):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/kube-api-linter/cmd/golangci-lint-kube-api-linter@$(KAL_VERSION)
	mv $(LOCALBIN)/golangci-lint-kube-api-linter $(GOLANGCI_KAL)

# helm's own build stamps its default Kubernetes version into the binary;
# built with go install it is v1.20, so every helm call passes --kube-version.
.PHONY: helm
helm:
	@command -v $(HELM) >/dev/null || { \
		mkdir -p $(LOCALBIN) && echo "building helm $(HELM_VERSION) into $(HELM)" && \
		GOBIN=$(LOCALBIN) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION) && \
		mv $(LOCALBIN)/helm $(HELM); }

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)

##@ Release

PLUGIN_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64

.PHONY: plugin-dist
plugin-dist: ## Build kubectl-pim for every platform into dist/ (tar.gz per platform, for krew).
	@mkdir -p dist
	@for p in $(PLUGIN_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		out=dist/kubectl-pim_$${os}_$${arch}; mkdir -p $$out; \
		echo "building $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags "-s -w" -o $$out/kubectl-pim$$ext ./cmd/kubectl-pim; \
		cp LICENSE $$out/ 2>/dev/null || true; \
		tar -C $$out -czf $$out.tar.gz .; \
	done
