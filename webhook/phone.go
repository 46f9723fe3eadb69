package webhook

import "github.com/voxanne/voxanne"

// NormalizeE164 returns s as an E.164 number and true, or "" and false when s
// is not a dialable number; see voxanne.NormalizeE164, which it is.
func NormalizeE164(s string) (string, bool) { return voxanne.NormalizeE164(s) }
