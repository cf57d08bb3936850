//go:build !unix

package flood

func raiseFDLimit() uint64 { return 0 }
