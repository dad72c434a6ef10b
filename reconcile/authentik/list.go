package authentik

import (
	"context"
	"fmt"
	"math"
	"net/http"

	api "goauthentik.io/api/v3"
	"golang.org/x/sync/errgroup"
)

// Limits on what one list may claim. authentik's pagination is read as a claim to check,
// never as a size to allocate by: a list is at most MaxListItems results on at most
// MaxListPages pages, and with the byte limits (MaxResponseBytes per response,
// MaxObserveBytes per Observe) no answer can make akminio allocate without bound.
const (
	MaxListItems = 100_000
	MaxListPages = 10_000
)

// pageFunc fetches one page (1-based) of a list.
type pageFunc[T any] func(ctx context.Context, page int32) ([]T, api.Pagination, *http.Response, error)

// listAll reads every page of a list: page 1 first, then, once page 1's pagination is
// checked (see checkPagination), the other pages concurrently, at most the Adapter's
// concurrency at a time, starting no more once the context ended. The result is complete or
// an error naming what was listed: a page that fails, pagination that does not add up, a
// page with the wrong number of results, or a count that changes between pages. Each is a
// failed observation.
func listAll[T any](ctx context.Context, a *Adapter, what string, p bodyPolicy, fetch pageFunc[T]) ([]T, error) {
	first, pg, err := fetchPage(ctx, a, what, 1, p, fetch)
	if err != nil {
		return nil, err
	}
	shape, err := checkPagination(pg, len(first), int(a.pageSize))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if shape.pages == 1 {
		return first, nil
	}
	rest := make([][]T, shape.pages-1)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cap(a.sem)) // Go blocks while the limit is reached: no goroutine waits ahead
	for i := range rest {
		if gctx.Err() != nil {
			break // a page failed or the caller gave up: start no more
		}
		page := i + 2
		g.Go(func() error {
			items, pg, err := fetchPage(gctx, a, what, int32(page), p, fetch)
			if err != nil {
				return err
			}
			if err := shape.check(page, pg, len(items)); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			rest[i] = items
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	all := make([]T, 0, shape.count)
	all = append(all, first...)
	for _, items := range rest {
		all = append(all, items...)
	}
	return all, nil
}

// fetchPage fetches one page while holding a concurrency slot.
func fetchPage[T any](ctx context.Context, a *Adapter, what string, page int32, p bodyPolicy, fetch pageFunc[T]) ([]T, api.Pagination, error) {
	if err := a.acquire(ctx); err != nil {
		return nil, api.Pagination{}, fmt.Errorf("%s: %w", what, err)
	}
	defer a.release()
	items, pg, resp, err := fetch(ctx, page)
	if err != nil {
		return nil, api.Pagination{}, callError(fmt.Sprintf("%s (page %d)", what, page), resp, err, p)
	}
	return items, pg, nil
}

// listShape is a list's pagination as page 1 gave it, checked.
type listShape struct {
	count int // results in the whole list
	size  int // results on every page but the last
	pages int
}

// checkPagination checks page 1's pagination against the results it carried (got) and
// the page size asked for. authentik (Django's Paginator) answers count >= 0, total_pages =
// max(1, ceil(count/size)), and size results on every page but the last; the server may
// cap the size below what was asked but never exceeds it. Anything else is not a list
// akminio can read completely, so it is an error, before any further page is asked for.
func checkPagination(pg api.Pagination, got, asked int) (listShape, error) {
	count, okC := whole(pg.Count)
	pages, okP := whole(pg.TotalPages)
	bad := func(why string) (listShape, error) {
		return listShape{}, fmt.Errorf("pagination does not add up (count %v, total_pages %v, %d results on page 1): %s; nothing was changed",
			pg.Count, pg.TotalPages, got, why)
	}
	switch {
	case !okC || count < 0:
		return bad("count is not a non-negative whole number")
	case !okP || pages < 1:
		return bad("total_pages is not a positive whole number")
	case count > MaxListItems:
		return listShape{}, fmt.Errorf("the list claims %v results, more than akminio reads (%d); nothing was changed", pg.Count, MaxListItems)
	case pages > MaxListPages:
		return listShape{}, fmt.Errorf("the list claims %v pages, more than akminio reads (%d); nothing was changed", pg.TotalPages, MaxListPages)
	case got > asked:
		return bad(fmt.Sprintf("more results than the page size asked for (%d)", asked))
	case pages == 1 && got != count:
		return bad("a single page must hold the whole count")
	case pages > 1 && (got == 0 || pages != (count+got-1)/got):
		return bad("total_pages is not the count divided by the page size")
	}
	return listShape{count: count, size: got, pages: pages}, nil
}

// check checks a later page against the shape: the same count and total_pages, and a full
// page (the last: the remainder). A difference means the list changed while it was read,
// or the server is not consistent; either way the list is not complete.
func (s listShape) check(page int, pg api.Pagination, got int) error {
	if c, ok := whole(pg.Count); !ok || c != s.count {
		return fmt.Errorf("changed while being read (count %d on page 1, %v on page %d); try again", s.count, pg.Count, page)
	}
	if n, ok := whole(pg.TotalPages); !ok || n != s.pages {
		return fmt.Errorf("changed while being read (total_pages %d on page 1, %v on page %d); try again", s.pages, pg.TotalPages, page)
	}
	want := s.size
	if page == s.pages {
		want = s.count - (s.pages-1)*s.size
	}
	if got != want {
		return fmt.Errorf("incomplete list: %d results on page %d of %d, want %d (count %d)", got, page, s.pages, want, s.count)
	}
	return nil
}

// whole converts a JSON number of the generated model (a float32) to an int when it is a
// whole number in range.
func whole(f float32) (int, bool) {
	v := float64(f)
	if v != math.Trunc(v) || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, false
	}
	return int(v), true
}
