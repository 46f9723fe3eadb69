package auth

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/voxanne/voxanne/auth/token"
)

// RemoteJWKS holds the keys of an external Supabase project, fetched from its
// JWKS URL at start and again, at most once per MinInterval, when a token names
// a kid it does not know (anyone can send such a token, hence the limit).
type RemoteJWKS struct {
	URL         string
	Client      *http.Client
	MinInterval time.Duration

	mu        sync.RWMutex
	keys      map[string]*token.Key
	lastFetch time.Time
	fetchMu   sync.Mutex
}

// NewRemoteJWKS returns a fetcher for url with a one-minute refresh limit.
func NewRemoteJWKS(url string) *RemoteJWKS {
	return &RemoteJWKS{URL: url, Client: &http.Client{Timeout: 5 * time.Second}, MinInterval: time.Minute}
}

// Lookup is the token.Verifier's External key source.
func (r *RemoteJWKS) Lookup(kid string) (*token.Key, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.keys[kid]
	return k, ok
}

// Refresh fetches the JWKS unless it was fetched less than MinInterval ago; it
// reports whether it fetched. On failure the keys held so far stay in use.
func (r *RemoteJWKS) Refresh(ctx context.Context) (bool, error) {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	if !r.lastFetch.IsZero() && time.Since(r.lastFetch) < r.MinInterval {
		return false, nil
	}
	r.lastFetch = time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL, nil)
	if err != nil {
		return false, err
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		return true, fmt.Errorf("fetch external JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return true, fmt.Errorf("fetch external JWKS: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return true, fmt.Errorf("fetch external JWKS: %w", err)
	}
	keys, err := token.ParseJWKS(body)
	if err != nil {
		return true, fmt.Errorf("external JWKS: %w", err)
	}
	byKID := make(map[string]*token.Key, len(keys))
	for _, k := range keys {
		byKID[k.ID] = k
	}
	r.mu.Lock()
	r.keys = byKID
	r.mu.Unlock()
	return true, nil
}
