package http

import (
	"net/http"
	"slices"
)

// corsAllowHeaders are the request headers cross-origin clients may send. The
// org is never chosen by a header, so x-org-id is deliberately absent.
const corsAllowHeaders = "authorization, content-type, apikey, x-client-info, x-supabase-api-version, x-request-id"

const corsExposeHeaders = "X-Supabase-Api-Version, X-Request-Id, Retry-After, X-Total-Count, Link"

// cors answers preflights and marks responses for the configured origins only.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := origin != "" && (slices.Contains(s.CORSOrigins, origin) || slices.Contains(s.CORSOrigins, "*"))
		if allowed {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if allowed {
				h := w.Header()
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
				h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
				h.Set("Access-Control-Max-Age", "600")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
