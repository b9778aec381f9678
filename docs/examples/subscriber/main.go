// Command subscriber prints mcp-jupyter events from the server's embedded
// NATS, one JSON object per line. It is the example of docs/nats.md.
//
//	go run ./docs/examples/subscriber -url nats://127.0.0.1:4222 -token "$MCP_NATS_TOKEN" \
//	    -subject 'mcpjupyter.ev.*.execution.*.ExecutionFinished'
//
// With -durable NAME (server run with --nats-jetstream) it reads through a
// durable JetStream consumer: started again, it catches up from where it
// stopped.
//
// An event too large for NATS arrives as a reference (header Mcp-Ref, the
// path serving it whole). With -http (the server's --addr) and -mcp-token
// (its MCP bearer token) the subscriber fetches it and prints the whole
// event; without, it prints the reference.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	url := flag.String("url", nats.DefaultURL, "the server's --nats-listen address")
	token := flag.String("token", os.Getenv("MCP_NATS_TOKEN"), "the server's --nats-token")
	seed := flag.String("nkey", "", "a user nkey seed file (when the server has --nats-nkeys)")
	subject := flag.String("subject", "mcpjupyter.ev.>", "subject or wildcard to follow")
	durable := flag.String("durable", "", "JetStream durable consumer name: catch up after being away")
	base := flag.String("http", "", "the server's HTTP address (--addr), to fetch events too large for NATS")
	mcpToken := flag.String("mcp-token", os.Getenv("MCP_TOKEN"), "the server's MCP bearer token (<data dir>/mcp-token), for -http")
	flag.Parse()
	if *base != "" && !strings.Contains(*base, "://") {
		*base = "http://" + *base
	}

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

	// NB: one subscription delivers in order, one message at a time, so a
	// fetched event is printed in its place.
	print := func(m *nats.Msg) { // m.Header.Get("Mcp-Seq") is the log sequence
		body := m.Data
		if ref := m.Header.Get("Mcp-Ref"); ref != "" && *base != "" {
			whole, err := fetch(ctx, *base+ref, *mcpToken)
			if err != nil {
				log.Printf("event %s is too large for NATS and could not be fetched: %v", m.Header.Get("Mcp-Seq"), err)
			} else {
				body = whole
			}
		}
		fmt.Printf("%s\n", body)
	}
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
			print(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
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

// fetch GETs an event the server published as a reference.
func fetch(ctx context.Context, url, token string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK { // 404: retention deleted it already
		return nil, fmt.Errorf("GET %s: %s: %.200s", url, resp.Status, body)
	}
	return body, nil
}
