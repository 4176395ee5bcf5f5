package xsk

// Audit checks the UMEM's frame accounting (see audit).
func (u *UMEM) Audit(held ...uint64) error { return u.audit(held...) }
