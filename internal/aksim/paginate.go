package aksim

import (
	"net/http"
	"strconv"
)

const (
	// pageSizeDefault and pageSizeMax are a fresh tenant's
	// pagination_default_page_size (a list without ?page_size gets 20) and
	// pagination_max_page_size (the cap on ?page_size), from authentik's
	// authentik/tenants/models.py; authentik/api/pagination.py reads them.
	pageSizeDefault = 20
	pageSizeMax     = 100
)

// paginate renders one page (rendering only its items) the way authentik's Pagination class does,
// Django Paginator semantics included: an empty list still has one page,
// next/previous are 0 when absent, start_index is 1-based (0 when empty),
// and a page past the end is 404 "Invalid page.".
func paginate(c *call, results []*record, render func(*record) map[string]any) (int, any) {
	q := c.r.URL.Query()
	size := pageSizeDefault
	if v, err := strconv.Atoi(q.Get("page_size")); err == nil && v > 0 {
		size = min(v, pageSizeMax)
	}
	page := 1
	if p := q.Get("page"); p != "" {
		v, err := strconv.Atoi(p)
		if err != nil || v < 1 {
			return http.StatusNotFound, map[string]any{"detail": "Invalid page."}
		}
		page = v
	}
	count := len(results)
	pages := max(1, (count+size-1)/size)
	if page > pages {
		return http.StatusNotFound, map[string]any{"detail": "Invalid page."}
	}
	lo := (page - 1) * size
	hi := min(lo+size, count)
	next, prev := 0, 0
	if page < pages {
		next = page + 1
	}
	if page > 1 {
		prev = page - 1
	}
	start := 0
	if count > 0 {
		start = lo + 1
	}
	end := page * size
	if page == pages {
		end = count
	}
	pageItems := make([]map[string]any, 0, hi-lo)
	for _, r := range results[lo:hi] {
		pageItems = append(pageItems, render(r))
	}
	return http.StatusOK, map[string]any{
		"pagination": map[string]any{
			"next":        next,
			"previous":    prev,
			"count":       count,
			"current":     page,
			"total_pages": pages,
			"start_index": start,
			"end_index":   end,
		},
		"results":      pageItems,
		"autocomplete": map[string]any{},
	}
}

// boolParam reads a boolean query parameter the way django-filter does;
// ok is false when it is absent.
func boolParam(c *call, name string) (val, ok bool) {
	v := c.r.URL.Query().Get(name)
	switch v {
	case "true", "True", "1":
		return true, true
	case "false", "False", "0":
		return false, true
	}
	return false, false
}

// has reports whether a query parameter is present.
func has(c *call, name string) bool { return c.r.URL.Query().Has(name) }

// qget returns a query parameter.
func qget(c *call, name string) string { return c.r.URL.Query().Get(name) }
