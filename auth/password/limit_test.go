package password

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// However many hashes are asked for at once, at most Slots run together: a
// burst of sign-ins cannot multiply argon2id's 19 MiB per hash.
func TestHashesRunBoundedAtOnce(t *testing.T) {
	defer func(w time.Duration) { MaxWait = w }(MaxWait)
	MaxWait = time.Minute // a loaded machine must not turn waits into failures here
	peak.Store(0)
	var wg sync.WaitGroup
	errs := make(chan error, 48)
	stored, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 48 {
		wg.Go(func() {
			if i%2 == 0 {
				_, err := Hash("correct horse battery staple")
				errs <- err
				return
			}
			_, _, err := Verify("correct horse battery staple", stored)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("with a long wait every hash gets its turn: %v", err)
		}
	}
	if p := peak.Load(); p > int32(Slots()) || p < 1 {
		t.Fatalf("%d hashes ran at once; the bound is %d", p, Slots())
	}
}

// Past a short wait, an excess hash fails with ErrBusy (a 429), and so does the
// dummy verification of an unknown account, so a busy server answers the same
// for accounts that exist and accounts that don't.
func TestExcessHashesGetErrBusy(t *testing.T) {
	defer func(w time.Duration) { MaxWait = w }(MaxWait)
	MaxWait = time.Millisecond
	// Hold every slot.
	for range Slots() {
		slots <- struct{}{}
	}
	defer func() {
		for range Slots() {
			<-slots
		}
	}()
	if _, err := Hash("pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash: %v", err)
	}
	if _, _, err := Verify("pw", "$2a$04$abcdefghijklmnopqrstuuJ3A4Wq6sE1mR5uQ3hO2vD6fJ8bC9kLi"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Verify: %v", err)
	}
	if err := VerifyDummy("pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("VerifyDummy: %v", err)
	}
}
