package aksim

import (
	"net/http"
)

func init() {
	for id, h := range map[string]handler{
		"flows_instances_list":                (*Server).flowsList,
		"flows_instances_retrieve":            (*Server).flowsRetrieve,
		"crypto_certificatekeypairs_list":     (*Server).keypairsList,
		"crypto_certificatekeypairs_retrieve": (*Server).keypairsRetrieve,
	} {
		apiHandlers[id] = h
	}
}

func (s *Server) flowsList(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []*record
	for _, fl := range sorted(st.flows, byField("slug")) {
		if !fieldFilters(c, fl, "slug", "name", "designation", "denied_action") {
			continue
		}
		if has(c, "flow_uuid") && fl.id != qget(c, "flow_uuid") {
			continue
		}
		if q := qget(c, "search"); q != "" && !containsFold(str(fl.f["name"]), q) && !containsFold(str(fl.f["slug"]), q) {
			continue
		}
		out = append(out, fl)
	}
	return paginate(c, out, renderFlow)
}

func (s *Server) flowsRetrieve(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	fl := find(st.flows, "slug", c.params["slug"])
	if fl == nil {
		return errNotFound("Flow")
	}
	return http.StatusOK, renderFlow(fl)
}

func (s *Server) keypairsList(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []*record
	for _, kp := range sorted(st.keypairs, byField("name")) {
		if !fieldFilters(c, kp, "name") {
			continue
		}
		if v, ok := boolParam(c, "has_key"); ok && !v {
			continue // every simulated keypair has its private key
		}
		if q := qget(c, "search"); q != "" && !containsFold(str(kp.f["name"]), q) {
			continue
		}
		out = append(out, kp)
	}
	return paginate(c, out, st.renderKeypair)
}

func (s *Server) keypairsRetrieve(c *call) (int, any) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	kp := st.keypairs[c.params["kp_uuid"]]
	if kp == nil {
		return errNotFound("Certificate-Key Pair")
	}
	return http.StatusOK, st.renderKeypair(kp)
}
