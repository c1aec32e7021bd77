package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/skillbox-dev/skillbox/api/skillbox/v1"
	"github.com/skillbox-dev/skillbox/runtime/engine"
	"github.com/skillbox-dev/skillbox/runtime/internal/testkit"
	"github.com/skillbox-dev/skillbox/runtime/server"
	"github.com/skillbox-dev/skillbox/runtime/transport"
)

const accessToken = "agent-token-0123456789abcdef"

// accessFixture is a server on a unix socket that wants a bearer token, with the
// transport's refusals wired to the server as `skillbox serve` wires them.
func accessFixture(t *testing.T, opts ...server.Option) (*engine.Engine, *server.Server, string) {
	t.Helper()
	ctx := context.Background()
	home := testkit.NewHome(t)
	eng := home.Engine(t, engine.Config{})
	dir, err := os.MkdirTemp("", "sb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("agent "+accessToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "unix://" + filepath.Join(dir, "s.sock")
	var srv *server.Server
	lis, gopts, err := transport.Listen(ctx, transport.ServerConfig{Addr: addr, TokenFile: tokens,
		Refused: func(ctx context.Context, peer, method string, err error) { srv.Unauthenticated(ctx, peer, method, err) }})
	if err != nil {
		t.Fatal(err)
	}
	srv = server.New(eng, transport.Caller, opts...)
	g := grpc.NewServer(append(gopts, server.GRPCOptions()...)...)
	srv.Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return eng, srv, addr
}

// Unauthenticated calls are audited, coalesced: a peer refused 50 times in a row
// leaves one record at once and one with the count of the rest (written at the end of
// its minute, or at shutdown), not 50.
func TestUnauthenticatedCallsAudited(t *testing.T) {
	eng, srv, addr := accessFixture(t)
	ctx := context.Background()
	for i, token := range []string{"", "wrong-token-0123456789"} {
		cc, err := transport.Dial(ctx, transport.ClientConfig{Addr: addr, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		for range 25 {
			_, err := pb.NewSkillsClient(cc).List(ctx, &pb.ListSkillsRequest{})
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("call %d without a good token: %v", i, err)
			}
		}
	}
	recs := auditOf(t, eng, engine.EventAccessRefused)
	me := "unix:uid=" + strconv.Itoa(os.Getuid())
	if len(recs) != 1 || recs[0].Reason != string(server.ReasonUnauthenticated) || recs[0].Caller != me ||
		recs[0].Details["count"] != float64(1) || recs[0].Details["method"] != "/skillbox.v1.Skills/List" {
		t.Fatalf("after 50 refusals: %+v, want one UNAUTHENTICATED record for %s", recs, me)
	}
	srv.Shutdown()
	recs = auditOf(t, eng, engine.EventAccessRefused)
	if len(recs) != 2 || recs[1].Details["count"] != float64(49) || recs[1].Caller != me {
		t.Fatalf("after shutdown: %+v, want a second record counting 49", recs)
	}
	// A good token is not recorded as refused.
	cc, err := transport.Dial(ctx, transport.ClientConfig{Addr: addr, Token: accessToken})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := pb.NewSkillsClient(cc).List(ctx, &pb.ListSkillsRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := len(auditOf(t, eng, engine.EventAccessRefused)); n != 2 {
		t.Fatalf("%d refusal records after a good call", n)
	}
}

// Failed Admin attempts are audited, coalesced per caller the same way.
func TestAdminRefusalsAudited(t *testing.T) {
	eng, srv, addr := accessFixture(t) // admins: this uid on the socket; the agent is not one
	ctx := context.Background()
	cc, err := transport.Dial(ctx, transport.ClientConfig{Addr: addr, Token: accessToken})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	admin := pb.NewAdminClient(cc)
	for range 20 {
		if _, err := admin.Disable(ctx, &pb.DisableRequest{Name: "echo", Reason: "let me"}); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("Disable by a non-admin: %v", err)
		}
		if _, err := admin.Reload(ctx, &pb.ReloadRequest{}); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("Reload by a non-admin: %v", err)
		}
	}
	recs := auditOf(t, eng, engine.EventAccessRefused)
	if len(recs) != 1 || recs[0].Reason != string(server.ReasonNotAdmin) || recs[0].Caller != "token:agent" ||
		recs[0].Details["method"] != "/skillbox.v1.Admin/Disable" {
		t.Fatalf("after 40 refused Admin calls: %+v", recs)
	}
	srv.Shutdown()
	recs = auditOf(t, eng, engine.EventAccessRefused)
	if len(recs) != 2 || recs[1].Details["count"] != float64(39) || recs[1].Details["method"] != "/skillbox.v1.Admin/Reload" {
		t.Fatalf("after shutdown: %+v", recs)
	}
}
