// Command subscriber prints mcp-jupyter events from the server's embedded
// NATS, one JSON object per line. It is the example of docs/nats.md.
//
//	go run ./docs/examples/subscriber -url nats://127.0.0.1:4222 -token "$MCP_NATS_TOKEN" \
//	    -subject 'mcpjupyter.ev.*.execution.*.ExecutionFinished'
//
// With -durable NAME (server run with --nats-jetstream) it reads through a
// durable JetStream consumer: started again, it catches up from where it
// stopped.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	url := flag.String("url", nats.DefaultURL, "the server's --nats-listen address")
	token := flag.String("token", os.Getenv("MCP_NATS_TOKEN"), "the server's --nats-token")
	seed := flag.String("nkey", "", "a user nkey seed file (when the server has --nats-nkeys)")
	subject := flag.String("subject", "mcpjupyter.ev.>", "subject or wildcard to follow")
	durable := flag.String("durable", "", "JetStream durable consumer name: catch up after being away")
	flag.Parse()

	opts := []nats.Option{nats.Name("mcp-jupyter example subscriber")}
	if *token != "" {
		opts = append(opts, nats.Token(*token))
	}
	if *seed != "" {
		opt, err := nats.NkeyOptionFromSeed(*seed)
		if err != nil {
			log.Fatal(err)
		}
		opts = append(opts, opt)
	}
	nc, err := nats.Connect(*url, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	print := func(m *nats.Msg) { fmt.Printf("%s\n", m.Data) } // m.Header.Get("Mcp-Seq") is the log sequence
	if *durable == "" {
		if _, err := nc.Subscribe(*subject, print); err != nil {
			log.Fatal(err)
		}
	} else {
		js, err := jetstream.New(nc)
		if err != nil {
			log.Fatal(err)
		}
		cons, err := js.CreateOrUpdateConsumer(ctx, "MCPJUPYTER_EVENTS", jetstream.ConsumerConfig{
			Durable: *durable, FilterSubject: *subject, AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			log.Fatal(err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			fmt.Printf("%s\n", m.Data())
			_ = m.Ack()
		})
		if err != nil {
			log.Fatal(err)
		}
		defer cc.Stop()
	}
	if err := nc.Flush(); err != nil { // the subscription is in place
		log.Fatal(err)
	}
	fmt.Fprintln(os.Stderr, "subscribed to", *subject)
	<-ctx.Done()
}
