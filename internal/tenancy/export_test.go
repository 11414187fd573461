package tenancy

// Invalidate exposes the cache invalidation to the external tests, so the
// miss benchmark can measure a cold decision without a store write.
func Invalidate(s *Service, ws string) { s.invalidate(ws) }
