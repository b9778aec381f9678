package natsbus

import (
	"fmt"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// nkeyUsers turns public user nkeys into server users that may subscribe to
// anything and publish anything but events (request/reply and the
// JetStream API keep working), and adds the server's own user, generated
// for this run, which alone publishes events.
func nkeyUsers(public []string) ([]*server.NkeyUser, nkeys.KeyPair, error) {
	var users []*server.NkeyUser
	for _, pk := range public {
		if !nkeys.IsValidPublicUserKey(pk) {
			return nil, nil, fmt.Errorf("start nats: %q is not a public user nkey (it starts with U; generate one with `nk -gen user -pubout`)", pk)
		}
		users = append(users, &server.NkeyUser{Nkey: pk, Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Deny: []string{"mcpjupyter.>"}}}})
	}
	self, err := nkeys.CreateUser()
	if err != nil {
		return nil, nil, fmt.Errorf("start nats: create the server's nkey: %w", err)
	}
	pub, err := self.PublicKey()
	if err != nil {
		return nil, nil, fmt.Errorf("start nats: %w", err)
	}
	return append(users, &server.NkeyUser{Nkey: pub}), self, nil
}
