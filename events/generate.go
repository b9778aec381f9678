package events

//go:generate go run ../cmd/eventsdoc -src . -o ../docs/events.md
