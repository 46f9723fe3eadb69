package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/voxanne/voxanne/internal/testsmtp"
)

// mailbox serves the test SMTP server's messages as JSON ([{to, data}]), so
// that the auth-js test can read the links and codes the server mailed.
func mailbox(t *testing.T, mail *testsmtp.Server) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		type msg struct {
			To   []string `json:"to"`
			Data string   `json:"data"`
		}
		var out []msg
		for _, m := range mail.Messages() {
			out = append(out, msg{To: m.To, Data: m.Data})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// serviceRoleToken runs `voxanne token service-role` beside the running
// server, as an operator would.
func (s *server) serviceRoleToken(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(binary, "token", "service-role")
	cmd.Env = append(os.Environ(), s.env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("voxanne token service-role: %v", err)
	}
	return strings.TrimSpace(string(out))
}
