package http

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/voxanne/voxanne"
)

// Admin user lists: GoTrue's page and per_page, 50 a page by default.
const (
	defaultPerPage = 50
	maxPerPage     = 1000
)

// pagination reads ?page (from 1) and ?per_page (1 to maxPerPage) as GoTrue
// does: a value that is not a positive whole number is 400.
func pagination(r *http.Request) (page, perPage int, err error) {
	page, perPage = 1, defaultPerPage
	q := r.URL.Query()
	for _, p := range []struct {
		name string
		into *int
		max  int
	}{{"page", &page, 1 << 30}, {"per_page", &perPage, maxPerPage}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil || n == 0 || int(n) > p.max {
			return 0, 0, voxanne.ReasonErrorf(voxanne.EINVALID, voxanne.ReasonValidationFailed,
				"Bad Pagination Parameters: %s must be a whole number from 1 to %d", p.name, p.max)
		}
		*p.into = int(n)
	}
	return page, perPage, nil
}

// setPageLinks sets X-Total-Count and GoTrue's Link header: the request's own
// URL with page set to the next page (while there is one) and to the last,
// `<url>; rel="next", <url>; rel="last"`. auth-js reads the page number right
// after the first "=", which is why page comes first in the query (the
// parameters are sorted, as GoTrue's are).
func setPageLinks(w http.ResponseWriter, r *http.Request, page, perPage, total int) {
	last := (total + perPage - 1) / perPage
	link := func(p int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		return "<" + u.String() + ">"
	}
	header := ""
	if last > page {
		header = link(page+1) + `; rel="next", `
	}
	header += link(last) + `; rel="last"`
	w.Header().Set("Link", header)
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
}
