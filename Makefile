# The two commands of the README: `make demo` runs the product with demo
# data, `make test` runs every test (and each fuzz target briefly).
.PHONY: demo test build

build:
	go build -o fjord ./cmd/fjord

demo:
	go run ./cmd/fjord serve --demo --data-dir data/demo

test:
	go vet ./...
	go test -count=1 -timeout 20m ./...
	./scripts/fuzz.sh
