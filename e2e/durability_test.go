package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres/pglocal"
	"github.com/voxanne/voxanne/webhook"
)

const durabilitySecret = "durability-vapi-secret"

// signedEvent is an end-of-call report for callID, signed with secret, to the
// Vapi endpoint at base+path.
func signedEvent(base, path, secret, callID, number string) (*http.Request, error) {
	body, _ := json.Marshal(map[string]any{"message": map[string]any{
		"type": "end-of-call-report", "endedReason": "customer-ended-call",
		"phoneNumber": map[string]any{"id": "pn-durable", "number": "+14155550100"},
		"customer":    map[string]any{"number": number},
		"call":        map[string]any{"id": callID, "orgId": "x", "phoneNumberId": "pn-durable", "type": "inboundPhoneCall"},
		"analysis":    map[string]any{"summary": "durability " + callID},
	}})
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequest("POST", base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Timestamp", ts)
	req.Header.Set("X-Signature", webhook.SignVapi(secret, ts, body))
	return req, nil
}

// Events acknowledged with a 2xx survive a SIGKILL of the server mid-stream and
// are processed exactly once after it starts again.
func TestAcknowledgedEventsSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cluster, err := pglocal.Start(ctx, pglocal.Options{Dir: testdb.ServerDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Stop(ctx) //nolint:errcheck
	dbURL := cluster.SuperuserURL("postgres")
	env := []string{"DATABASE_URL=" + dbURL, "VOXANNE_VAPI_SECRET=" + durabilitySecret, "VOXANNE_PUBLIC_URL=http://voxanne.test"}
	s := startServer(t, env...)

	// An org with its own Vapi endpoint, which the events come to.
	sess := signUp(t, s.URL, "durable@example.com")
	code, ep := call(t, "POST", s.URL+"/api/org/webhook-endpoints", sess.AccessToken, map[string]any{"provider": "vapi"})
	if code != 201 {
		t.Fatalf("create endpoint: %d %v", code, ep)
	}
	epURL, _ := ep["url"].(string)
	epPath := strings.TrimPrefix(epURL, "http://voxanne.test")
	epSecret, _ := ep["secret"].(string)

	// Stream events from 4 senders; kill the server with SIGKILL mid-stream.
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 5 * time.Second}
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("dur-%d-%d", w, i)
				req, err := signedEvent(s.URL, epPath, epSecret, id, fmt.Sprintf("+1415555%04d", i%50))
				if err != nil {
					return
				}
				resp, err := client.Do(req)
				if err != nil {
					continue // the server is gone: this event was never acknowledged
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}
		}(w)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Wait()
	close(stop)
	wg.Wait()
	t.Logf("%d events acknowledged before SIGKILL", len(acked))
	if len(acked) < 100 {
		t.Fatalf("only %d events acknowledged", len(acked))
	}

	// Start again on the same database and let the queue drain.
	startServer(t, env...)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Jobs the killed instance had started are rescued once River's rescuer sees
	// them stuck (20 s, checked every 30 s), then retried.
	drain := time.Now().Add(120 * time.Second)
	for {
		var pending int
		if err := conn.QueryRow(ctx, `select count(*) from webhook_events where status = 'pending'`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(drain) {
			t.Fatalf("%d events still pending after restart", pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rows, err := conn.Query(ctx, `select provider_call_id from calls`)
	if err != nil {
		t.Fatal(err)
	}
	calls, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, c := range calls {
		seen[c]++
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("acknowledged event %s made %d calls", id, seen[id])
		}
	}
	// Exactly once: the contacts' call counts add up to the calls.
	var totalCount, callRows int
	if err := conn.QueryRow(ctx, `select coalesce(sum(call_count), 0), (select count(*) from calls) from contacts`).Scan(&totalCount, &callRows); err != nil {
		t.Fatal(err)
	}
	if totalCount != callRows {
		t.Fatalf("contacts count %d calls but there are %d", totalCount, callRows)
	}
}
