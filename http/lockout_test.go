package http_test

// Wrong-password limits that stop guessing without locking the real user out,
// and /recover limited per address as well as per IP.

import (
	"fmt"
	"sync"
	"testing"
	"time"

	voxhttp "github.com/voxanne/voxanne/http"
	"github.com/voxanne/voxanne/internal/testenv"
)

const tokenPath = "/auth/v1/token?grant_type=password"

// Ten wrong guesses from an attacker's IP use up the attacker's bucket for
// that address; the real user, from their own IP, still signs in.
func TestWrongPasswordsDoNotLockOutTheVictim(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{TrustedProxies: voxhttp.TrustedProxies{Hops: 1},
		RateLimits: &voxhttp.RateLimits{Email: voxhttp.Rate{N: 10, Per: 5 * time.Minute}}})
	signUp(t, e, "victim@example.com")
	const attacker, victim = "203.0.113.66", "198.51.100.7"
	for i := 0; i < 10; i++ {
		r := signInVia(t, e, "victim@example.com", fmt.Sprintf("Guess-%d-xyzzy", i), attacker)
		wantStatus(t, r, 400, fmt.Sprintf("guess %d", i+1))
	}
	// The attacker is stopped, even with the right password now.
	for _, pw := range []string{"Guess-10-xyzzy", testenv.Password} {
		r := signInVia(t, e, "VICTIM@example.com ", pw, attacker)
		wantStatus(t, r, 429, "attacker after ten guesses")
		if r.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	// The victim is not.
	wantStatus(t, signInVia(t, e, "victim@example.com", testenv.Password, victim), 200, "victim from their own IP")
	// Nor is anyone else from the attacker's IP.
	signUp(t, e, "bystander@example.com")
	wantStatus(t, signInVia(t, e, "bystander@example.com", testenv.Password, attacker), 200, "another address from the attacker's IP")
}

// The per-address cap over all IPs bounds guessing from many addresses; it is
// meant to be far above the per-IP one (10x by default).
func TestWrongPasswordsCappedPerAddressOverAllIPs(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{TrustedProxies: voxhttp.TrustedProxies{Hops: 1},
		RateLimits: &voxhttp.RateLimits{Email: voxhttp.Rate{N: 3, Per: time.Hour}, EmailGlobal: voxhttp.Rate{N: 5, Per: time.Hour}}})
	signUp(t, e, "target@example.com")
	for i := 0; i < 5; i++ {
		wantStatus(t, signInVia(t, e, "target@example.com", "Wrong-guess-xyzzy", fmt.Sprintf("203.0.113.%d", i+1)), 400, "guess")
	}
	expect := func(r *testenv.Response, what string) {
		t.Helper()
		wantStatus(t, r, 429, what)
		if code := r.JSON(t)["error_code"]; code != "over_request_rate_limit" {
			t.Errorf("%s: error_code %v", what, code)
		}
	}
	expect(signInVia(t, e, "target@example.com", "Wrong-guess-xyzzy", "203.0.113.99"), "sixth guess from a fresh IP")
	// A refused attempt gives its per-IP token back: the fresh IP is not
	// charged for an attempt that never ran.
	e2 := testenv.New(t, testenv.Options{TrustedProxies: voxhttp.TrustedProxies{Hops: 1},
		RateLimits: &voxhttp.RateLimits{Email: voxhttp.Rate{N: 1, Per: time.Hour}, EmailGlobal: voxhttp.Rate{N: 1, Per: time.Hour}}})
	signUp(t, e2, "t2@example.com")
	wantStatus(t, signInVia(t, e2, "t2@example.com", "Wrong-guess-xyzzy", "203.0.113.1"), 400, "first guess")
	expect(signInVia(t, e2, "t2@example.com", "Wrong-guess-xyzzy", "203.0.113.2"), "guess over the global cap")
}

// Correct passwords do not use up the bucket; wrong ones do.
func TestRightPasswordsDoNotCount(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{RateLimits: &voxhttp.RateLimits{Email: voxhttp.Rate{N: 2, Per: time.Hour},
		EmailGlobal: voxhttp.Rate{N: 2, Per: time.Hour}}})
	signUp(t, e, "regular@example.com")
	for i := 0; i < 5; i++ {
		signIn(t, e, "regular@example.com", testenv.Password)
	}
	for i := 0; i < 2; i++ {
		wantStatus(t, request(t, e, "POST", tokenPath, map[string]any{"email": "regular@example.com", "password": "Wrong-guess-xyzzy"}), 400, "wrong")
	}
	expectAuthError(t, e, "POST", tokenPath, map[string]any{"email": "regular@example.com", "password": testenv.Password}, 429, "over_request_rate_limit")
}

// Parallel guesses cannot overrun the bucket: the token is taken before the
// password is checked.
func TestParallelGuessesBounded(t *testing.T) {
	e := testenv.New(t, testenv.Options{RateLimits: &voxhttp.RateLimits{Email: voxhttp.Rate{N: 5, Per: time.Hour}}})
	signUp(t, e, "para@example.com")
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.DoFor(t, "POST", tokenPath, map[string]any{"email": "para@example.com", "password": "Wrong-guess-xyzzy"})
			mu.Lock()
			statuses[r.Status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[400] > 5 || statuses[400] == 0 {
		t.Errorf("statuses %v: want at most 5 checked guesses", statuses)
	}
}

// /recover is limited per address over all IPs: three requests for one inbox
// from three IPs send two mails.
func TestRecoverLimitedPerAddress(t *testing.T) {
	t.Parallel()
	mails := &mailRecorder{}
	e := testenv.New(t, testenv.Options{Mailer: mails, TrustedProxies: voxhttp.TrustedProxies{Hops: 1},
		RateLimits: &voxhttp.RateLimits{Recover: voxhttp.Rate{N: 10, Per: time.Hour}, RecoverEmail: voxhttp.Rate{N: 2, Per: time.Hour}}})
	signUp(t, e, "inbox@example.com")
	for i, ip := range []string{"203.0.113.1", "203.0.113.2"} {
		wantStatus(t, postVia(t, e, "/auth/v1/recover", map[string]any{"email": "inbox@example.com"}, ip), 200, fmt.Sprintf("recover %d", i+1))
	}
	r := postVia(t, e, "/auth/v1/recover", map[string]any{"email": " Inbox@Example.com"}, "203.0.113.3")
	wantStatus(t, r, 429, "third recover from a third IP")
	if code := r.JSON(t)["error_code"]; code != "over_email_send_rate_limit" || r.Header.Get("Retry-After") == "" {
		t.Errorf("429 %s, Retry-After %q", r.Body, r.Header.Get("Retry-After"))
	}
	// An address without an account is limited the same way: a 429 tells
	// nothing about accounts.
	for i := 0; i < 2; i++ {
		wantStatus(t, postVia(t, e, "/auth/v1/recover", map[string]any{"email": "nobody@example.com"}, "203.0.113.4"), 200, "unknown address")
	}
	wantStatus(t, postVia(t, e, "/auth/v1/recover", map[string]any{"email": "nobody@example.com"}, "203.0.113.5"), 429, "unknown address, third")
	// Another inbox from the same IP is unaffected.
	signUp(t, e, "other@example.com")
	wantStatus(t, postVia(t, e, "/auth/v1/recover", map[string]any{"email": "other@example.com"}, "203.0.113.3"), 200, "another address")
	mails.wait(t, "inbox@example.com", 2)
	mails.wait(t, "other@example.com", 1)
	time.Sleep(300 * time.Millisecond)
	if n := len(mails.bodies("inbox@example.com")); n != 2 {
		t.Errorf("%d recovery mails to one inbox, want 2", n)
	}
}
