package logind

// SetGetAllConcurrency changes how many GetAll calls Sessions keeps in flight
// and returns a function that restores the old value. Tests only.
func SetGetAllConcurrency(n int) (restore func()) {
	old := getAllConcurrency
	getAllConcurrency = n
	return func() { getAllConcurrency = old }
}
