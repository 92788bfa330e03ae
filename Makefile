# Every target installs what it needs, so each works on a fresh clone.
# Node 24 comes from the npm 'node' package; its bin dir goes first on PATH.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
NPM_STAMP := node_modules/.package-lock.json
# jest runs ESM-only packages (jose, @kubernetes/client-node) through
# require(esm), which needs vm.SourceTextModule: on Node 24 that is behind
# this flag.
JEST := NODE_OPTIONS="--experimental-vm-modules --disable-warning=ExperimentalWarning" jest

.PHONY: sdk install build run test test-unit test-integration typecheck lint format bench go-piko control-plane node registry browser image toxiproxy clean

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NPM_STAMP)

install: $(NPM_STAMP)

build: install
	tsc -p tsconfig.build.json
	npm run --silent build:ui

typecheck: install
	tsc -p tsconfig.json --noEmit
	tsc -p dataplane/admin/ui/tsconfig.json --noEmit
	tsc -p dataplane/agent/inspector/ui/tsconfig.json --noEmit

## typescript-eslint's recommended rules and prettier's formatting, over every TypeScript tree.
LINT_TREES := dataplane operator test bench
lint: install
	eslint $(LINT_TREES)
	prettier --check $(foreach t,$(LINT_TREES),'$(t)/**/*.ts')

## Rewrites the trees in prettier's format.
format: install
	prettier --write --log-level warn $(foreach t,$(LINT_TREES),'$(t)/**/*.ts')

## A single-node server with the in-memory registry on :8000 (proxy), :8001 (upstream), :8002 (admin).
run: build
	bin/piko server

## Everything CI runs: type check, build, the original Go Piko for interop, toxiproxy for the
## fault-injection tests, a real Kubernetes control plane (built from the Go module proxy on first
## use, about 12 minutes), every test.
test: build typecheck lint go-piko toxiproxy control-plane node registry browser
	$(JEST) --ci

test-unit: install
	$(JEST) test/unit

test-integration: build
	$(JEST) test/integration

## The SDK as the npm package users install (dist/sdk: the SDK's modules, an ESM entry, ws as its
## only dependency); `npm pack dist/sdk` makes the tarball.
sdk: build
	node dist/dataplane/client/sdk-package.js --out dist/sdk

## The original Piko, built from the Go module proxy into a cache outside the clone.
go-piko:
	bash test/interop/build-go-piko.sh

## The node's runtime (containerd, runc, CNI plugins, CoreDNS) and its images (pause, CoreDNS),
## built into the cache; test/k8s/node.ts runs them. Needs root (apt-get, netns, cgroups).
node:
	bash test/k8s/build-images.sh >/dev/null

## The project's image with no registry or container engine (OCI archive, see the script), for
## the test node or `ctr images import`; IMAGE names it.
IMAGE ?= piko.local/piko:dev
image: build
	bash test/k8s/images/piko/build.sh $(IMAGE)

## CNCF distribution's registry (built into the cache) and skopeo (Debian's package), with which
## the real-node test releases the chart and the image to a registry on loopback (.ci/release).
registry:
	bash test/k8s/build-registry.sh >/dev/null
	command -v skopeo >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends skopeo

## Headless Chromium for the page tests: Debian's package, driven by playwright-core (no download).
browser:
	command -v chromium >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

## Shopify's toxiproxy, the fault-injecting TCP proxy of test/integration/faults, built into the cache.
toxiproxy:
	bash test/faults/build-toxiproxy.sh >/dev/null

## etcd, kube-apiserver, kube-controller-manager, kubectl and helm, built from source into a cache.
control-plane:
	bash test/k8s/build-control-plane.sh >/dev/null

bench: build go-piko
	bash bench/run.sh

clean:
	rm -rf dist coverage

.PHONY: k8s-up k8s-down

## A real single-node Kubernetes cluster (control plane, scheduler, kubelet, kube-proxy,
## containerd, CoreDNS; needs root) in the background; admin kubeconfig in .k8s/kubeconfig.
## `make image` then `ctr` imports our image. See docs/testing-kubernetes.md.
k8s-up: install
	bash test/k8s/build-control-plane.sh >/dev/null
	bash test/k8s/build-images.sh >/dev/null
	ts-node --transpile-only test/k8s/k8s-up.ts

## Stops the control plane k8s-up started (SIGTERM to the pid in .k8s/k8s-up.pid; waits up to 30 s).
k8s-down:
	@pid=$$(cat .k8s/k8s-up.pid 2>/dev/null) || { echo "k8s-down: not running (no .k8s/k8s-up.pid)"; exit 0; }; \
	if kill $$pid 2>/dev/null; then timeout 30 tail --pid=$$pid -f /dev/null || echo "k8s-down: pid $$pid still running after 30 s"; fi; \
	rm -f .k8s/k8s-up.pid .k8s/kubeconfig .k8s/bin .k8s/containerd.sock; echo "k8s-down: stopped"
