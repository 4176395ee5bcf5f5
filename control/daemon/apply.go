package daemon

import (
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/scmlb-xsk/scmlb-xsk/control/api"
	"github.com/scmlb-xsk/scmlb-xsk/control/config"
	"github.com/scmlb-xsk/scmlb-xsk/control/declare"
)

// Apply moves the state to a declarative document in one step, all or
// nothing, through the one apply path; with DryRun it only plans. The plan
// is computed against the state and tables of the moment (health and next
// hops included).
func (c *core) Apply(req api.ApplyRequest) (api.ApplyResult, error) {
	doc, err := declare.Parse(strings.NewReader(req.YAML))
	if err != nil {
		return api.ApplyResult{}, fmt.Errorf("%w: %v", config.ErrInvalid, err)
	}
	to := func(st *config.State) error {
		next, err := declare.Desired(st, doc)
		if err != nil {
			return err
		}
		*st = *next
		return nil
	}
	res, err := c.plan(to)
	if err != nil || req.DryRun || len(res.Changes) == 0 {
		return res, err
	}
	if _, err := c.change(to); err != nil {
		return res, err
	}
	res.Applied = true
	c.log.Info("declarative state applied", zap.Int("changes", len(res.Changes)))
	return res, nil
}

// plan is a change's dry run: the new state is validated and compiled
// exactly as change would, then compared with the current one.
func (c *core) plan(fn func(*config.State) error) (api.ApplyResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.store.State()
	next, err := c.store.Prepare(fn)
	if err != nil {
		return api.ApplyResult{}, err
	}
	if err := c.checkVIPs(next); err != nil {
		return api.ApplyResult{}, err
	}
	p, err := c.makePlan(next)
	if err != nil {
		return api.ApplyResult{}, fmt.Errorf("refused by the dataplane: %w", err)
	}
	res := api.ApplyResult{Changes: []string{}, Services: []api.ServicePlan{}}
	changed := map[string]bool{}
	for _, ch := range declare.Diff(cur, next) {
		res.Changes = append(res.Changes, ch.String())
		changed[ch.Service] = true
	}
	pinned := c.pinnedFlows(declare.Removed(cur, next))
	is := map[uint32]bool{}
	for _, s := range next.Services {
		is[s.ID] = true
	}
	for _, s := range cur.Services {
		if !is[s.ID] {
			res.Services = append(res.Services, api.ServicePlan{Service: s.Name(), Status: "removed", MovedShare: 1, PinnedFlows: pinned[s.ID]})
		}
	}
	var moves map[uint32]float64
	if c.last != nil {
		moves = p.compiled.MovedShares(c.last.compiled)
	}
	for _, s := range next.Services {
		sp := api.ServicePlan{Service: s.Name(), Status: "unchanged", PinnedFlows: pinned[s.ID]}
		moved, ok := moves[s.ID]
		switch {
		case !ok:
			sp.Status, sp.MovedShare = "added", 1
		case changed[s.Name()] || moved > 0:
			sp.Status, sp.MovedShare = "changed", moved
		}
		res.Services = append(res.Services, sp)
	}
	return res, nil
}

// pinnedFlows counts, by service id, the live (not closed) flows on the
// backends given (those a plan removes), without copying the table.
func (c *core) pinnedFlows(removed map[uint32][]uint32) map[uint32]int {
	out := map[uint32]int{}
	if len(removed) == 0 {
		return out
	}
	active := c.eng.Conntrack().ActiveByBackend()
	for sid, ids := range removed {
		for _, id := range ids {
			out[sid] += int(active[id])
		}
	}
	return out
}

// Export writes the current state as a declarative document.
func (c *core) Export() (api.Export, error) {
	b, err := declare.Marshal(declare.FromState(c.store.State()))
	if err != nil {
		return api.Export{}, err
	}
	return api.Export{YAML: string(b)}, nil
}
