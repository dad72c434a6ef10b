package authentik

import (
	"context"
	"fmt"
	"net/http"

	api "goauthentik.io/api/v3"
	"golang.org/x/sync/errgroup"
)

// pageFunc fetches one page (1-based) of a list.
type pageFunc[T any] func(ctx context.Context, page int32) ([]T, api.Pagination, *http.Response, error)

// listAll reads every page of a list: page 1 first, then, knowing total_pages, all other
// pages concurrently (bounded by the Adapter's semaphore). The result is complete or an
// error: a page that fails, a count that changes between pages, or fewer results than the
// count (a list that ended early) are errors naming what was listed.
func listAll[T any](ctx context.Context, a *Adapter, what string, p bodyPolicy, fetch pageFunc[T]) ([]T, error) {
	first, pg, err := fetchPage(ctx, a, what, 1, p, fetch)
	if err != nil {
		return nil, err
	}
	count, pages := int(pg.Count), int(pg.TotalPages)
	if pages <= 1 {
		return checkComplete(what, first, count)
	}
	rest := make([][]T, pages-1)
	g, gctx := errgroup.WithContext(ctx)
	for i := range rest {
		page := int32(i + 2)
		g.Go(func() error {
			items, pg, err := fetchPage(gctx, a, what, page, p, fetch)
			if err != nil {
				return err
			}
			if int(pg.Count) != count {
				return fmt.Errorf("%s: changed while being read (count %d on page 1, %d on page %d); try again", what, count, int(pg.Count), page)
			}
			rest[i] = items
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	all := make([]T, 0, count)
	all = append(all, first...)
	for _, items := range rest {
		all = append(all, items...)
	}
	return checkComplete(what, all, count)
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

// checkComplete fails when a list returned fewer (or more) items than its count.
func checkComplete[T any](what string, items []T, count int) ([]T, error) {
	if len(items) != count {
		return nil, fmt.Errorf("%s: incomplete list: %d results of a count of %d", what, len(items), count)
	}
	return items, nil
}
