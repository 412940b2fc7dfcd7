module github.com/orchestrator-sidecar/orchestrator/examples/go

go 1.26.0

require github.com/orchestrator-sidecar/orchestrator/clients/go v0.0.0

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261123191846-1e707ab9fbc2 // indirect
	google.golang.org/grpc v1.85.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/orchestrator-sidecar/orchestrator/clients/go => ../../clients/go
