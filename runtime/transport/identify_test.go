package transport

import (
	"crypto/tls"
	"errors"
	"testing"
)

// TestIdentifyWithoutGRPC: the identity rule takes plain peer facts, so a door other
// than gRPC (HTTP) names callers exactly as the gRPC one does.
func TestIdentifyWithoutGRPC(t *testing.T) {
	tokens, err := LoadTokens(writeTokens(t, t.TempDir(), "agent "+goodToken+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		p      PeerInfo
		tokens *TokenSet
		want   string // "" means refused
	}{
		{"unix peer", PeerInfo{Unix: &PeerCredInfo{UID: 1234}}, nil, "unix:uid=1234"},
		{"anonymous TLS", PeerInfo{TLS: &tls.ConnectionState{}}, nil, "tls:anonymous"},
		{"nothing known", PeerInfo{}, nil, ""},
		{"token", PeerInfo{Authorization: []string{"Bearer " + goodToken}}, tokens, "token:agent"},
		{"token over a unix socket", PeerInfo{Unix: &PeerCredInfo{UID: 1}, Authorization: []string{"Bearer " + goodToken}}, tokens, "token:agent"},
		{"wrong token", PeerInfo{Authorization: []string{"Bearer nope"}}, tokens, ""},
		{"missing token", PeerInfo{Unix: &PeerCredInfo{UID: 1}}, tokens, ""},
		{"two headers", PeerInfo{Authorization: []string{"Bearer " + goodToken, "Bearer " + goodToken}}, tokens, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Identify(tc.p, tc.tokens)
			var ae *AuthError
			switch {
			case tc.want == "" && !errors.As(err, &ae):
				t.Fatalf("Identify = %q, %v; want an AuthError", got, err)
			case tc.want != "" && (err != nil || got != tc.want):
				t.Fatalf("Identify = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
