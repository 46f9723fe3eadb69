package totp

import (
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QRCodeSVG draws text (an otpauth:// URI) as a QR code in SVG: one path of
// unit squares on a white background with the standard quiet zone, which
// scales without blurring. GoTrue returns the same kind of document, as the
// factor's totp.qr_code, for a page to show inline.
func QRCodeSVG(text string) (string, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", fmt.Errorf("totp: qr code: %w", err)
	}
	bits := q.Bitmap() // with a 4-module quiet zone
	n := len(bits)
	var path strings.Builder
	for y, row := range bits {
		for x, dark := range row {
			if dark {
				fmt.Fprintf(&path, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" shape-rendering="crispEdges">`+
		`<rect width="100%%" height="100%%" fill="#fff"/><path fill="#000" d="%s"/></svg>`, n, n, n*4, n*4, path.String()), nil
}
