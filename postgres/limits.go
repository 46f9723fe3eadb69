package postgres

import (
	"encoding/json"

	"github.com/voxanne/voxanne"
)

// maxUserMetadata bounds a user's user_metadata as JSON. Every access token
// carries it: without a bound, one account could make its own tokens too big
// for any proxy's header limit, and so unusable.
const maxUserMetadata = 4 << 10

// checkUserMetadata refuses user_metadata over maxUserMetadata. Callers check
// the input before hashing anything and the merged result before committing.
func checkUserMetadata(m map[string]any) error {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil || len(b) > maxUserMetadata {
		return voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonValidationFailed, "user_metadata must be at most 4 KiB of JSON")
	}
	return nil
}
