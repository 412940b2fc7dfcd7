// One unary call, one stream and one typed error against the sidecar.
// Run: ORCHESTRATOR_SIDECAR_ADDRESS=127.0.0.1:50051 ORCHESTRATOR_SIDECAR_TOKEN=... go run .
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"time"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
)

func main() {
	client, err := orchestrator.New() // address and token from the environment
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	who := orchestrator.Tenant("acme", "u1")

	resp, err := client.Generate(ctx, orchestrator.Prompt("Say hello", who))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(orchestrator.Text(resp), resp.GetSummary().GetUsage().GetTotalTokens())

	stream, err := client.Stream(ctx, orchestrator.StreamPrompt("Say hello", who))
	if err != nil {
		log.Fatal(err)
	}
	for event, err := stream.Recv(); !errors.Is(err, io.EOF); event, err = stream.Recv() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(event.GetDelta().GetText())
	}
	fmt.Println()

	_, err = client.Generate(ctx, orchestrator.Prompt("hi", who, orchestrator.Model("no-such-model")))
	var notFound *orchestrator.NotFoundError
	if errors.As(err, &notFound) {
		fmt.Println("typed error:", notFound.Reason, notFound.Metadata)
	}
}
