# Every target installs what it needs, so each works on a fresh clone.
# Node 24 comes from the npm 'node' package; its bin dir goes first on PATH.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
NPM_STAMP := node_modules/.package-lock.json
# jest runs ESM-only packages (jose, @kubernetes/client-node) through
# require(esm), which needs vm.SourceTextModule: on Node 24 that is behind
# this flag.
JEST := NODE_OPTIONS="--experimental-vm-modules --disable-warning=ExperimentalWarning" jest

.PHONY: install build run test test-unit test-integration typecheck bench go-piko clean

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NPM_STAMP)

install: $(NPM_STAMP)

build: install
	tsc -p tsconfig.build.json

typecheck: install
	tsc -p tsconfig.json --noEmit

## A single-node server with the in-memory registry on :8000 (proxy), :8001 (upstream), :8002 (admin).
run: build
	bin/piko server

## Everything CI runs: type check, build, the original Go Piko for interop, every test.
test: build typecheck go-piko
	$(JEST) --ci

test-unit: install
	$(JEST) test/unit

test-integration: build
	$(JEST) test/integration

## The original Piko, built from the Go module proxy into a cache outside the clone.
go-piko:
	bash test/interop/build-go-piko.sh

bench: build go-piko
	bash bench/run.sh

clean:
	rm -rf dist coverage
