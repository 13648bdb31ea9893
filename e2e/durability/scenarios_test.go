package durability

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ledger is what the clients were told: every acknowledged declaration.
type ledger struct {
	mu    sync.Mutex
	acked []decl
	ids   map[string]bool
}

func (l *ledger) add(t *testing.T, d decl) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ids[d.id] {
		t.Errorf("id %s acknowledged twice", d.id)
	}
	l.ids[d.id] = true
	l.acked = append(l.acked, d)
}

// sums returns the expected département total and commune totals.
func (l *ledger) sums() (int, map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	total, per := 0, map[string]int{}
	for _, d := range l.acked {
		total += d.Count
		per[d.Commune] += d.Count
	}
	return total, per
}

// testKillNine: concurrent posters; SIGKILL right after the Nth 201 of the
// cycle; restart on the same data dir; the posters resend what was never
// answered with the same key, as the form does; then every acknowledged
// declaration must be there and the totals exact. Three cycles.
func (e *env) testKillNine(t *testing.T) {
	data := t.TempDir()
	const posters = 8
	codes := e.codes[:posters]
	tokens := e.communeLinks(t, data, codes)
	operator := e.operatorToken(t, data)
	c := newClient(t)
	led := &ledger{ids: map[string]bool{}}
	srv := e.start(t, data)
	var pending []decl
	for cycle := 0; cycle < 3; cycle++ {
		threshold := int64(15 + 10*cycle)
		var acks atomic.Int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		for p := 0; p < posters; p++ {
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				// Bounded: the kill comes long before 500 declarations.
				for i := 0; i < 500; i++ {
					d := decl{Commune: codes[p], Date: []string{e.yesterday, e.dayBefore}[i%2], Place: places[(p+i)%4],
						Count: 1 + rand.IntN(5), IdempotencyKey: newKey(), token: tokens[codes[p]]}
					status, got, err := c.post(srv.base, d)
					if err != nil && status == 0 {
						mu.Lock()
						pending = append(pending, d) // never answered: resent after restart
						mu.Unlock()
						return
					}
					if err != nil || status != http.StatusCreated {
						t.Errorf("poster %d: status %d %v", p, status, err)
						return
					}
					checkSame(t, d, got)
					d.id = got.ID
					led.add(t, d)
					if acks.Add(1) == threshold {
						srv.signalKill() // right after this 201
					}
				}
				t.Errorf("poster %d: 500 declarations and no kill", p)
			}(p)
		}
		wg.Wait()
		srv.wait(t)
		srv = e.start(t, data)
		resent, committed := len(pending), e.resend(t, c, srv.base, led, pending)
		pending = nil
		t.Logf("cycle %d: killed after the %dth 201 of the cycle; %d unanswered requests resent, %d of them had been committed before the kill",
			cycle+1, threshold, resent, committed)
		e.verify(t, c, srv.base, operator, led)
	}
	srv.kill9(t)
	srv = e.start(t, data)
	e.verify(t, c, srv.base, operator, led)
	total, _ := led.sums()
	t.Logf("%d declarations acknowledged, %d deaths, all found after 4 SIGKILLs", len(led.acked), total)
}

func checkSame(t *testing.T, d decl, got stored) {
	t.Helper()
	if got.ID == "" || got.Commune != d.Commune || got.Date != d.Date || got.Place != d.Place ||
		got.Count != d.Count || got.IdempotencyKey != d.IdempotencyKey {
		t.Errorf("sent %+v, stored %+v", d, got)
	}
}

// resend posts the unanswered declarations again with their keys and
// returns how many the server already had (200 instead of 201).
func (e *env) resend(t *testing.T, c *client, base string, led *ledger, pending []decl) int {
	t.Helper()
	had := 0
	for _, d := range pending {
		status, got, err := c.post(base, d)
		if err != nil {
			t.Fatalf("resend after restart: %d %v", status, err)
		}
		if status == http.StatusOK {
			had++
		}
		checkSame(t, d, got)
		d.id = got.ID
		led.add(t, d)
	}
	return had
}

// verify reads back every acknowledged declaration by id and compares the
// totals, to the unit.
func (e *env) verify(t *testing.T, c *client, base, operator string, led *ledger) {
	t.Helper()
	led.mu.Lock()
	acked := append([]decl(nil), led.acked...)
	led.mu.Unlock()
	for _, d := range acked {
		var h struct {
			Declaration stored `json:"declaration"`
		}
		if st := c.getJSON(t, base, "/api/v1/declarations/"+d.id, operator, &h); st != http.StatusOK {
			t.Fatalf("acknowledged declaration %s lost: status %d", d.id, st)
		}
		checkSame(t, d, h.Declaration)
	}
	wantTotal, wantPer := led.sums()
	gotTotal, gotPer := c.totals(t, base, operator)
	if gotTotal != wantTotal {
		t.Fatalf("département total %d, acknowledged %d", gotTotal, wantTotal)
	}
	if fmt.Sprint(gotPer) != fmt.Sprint(wantPer) {
		t.Fatalf("commune totals %v, acknowledged %v", gotPer, wantPer)
	}
}

// testIdempotency: one key posted 20 times at once is one declaration, and
// still one after a SIGKILL and a restart.
func (e *env) testIdempotency(t *testing.T) {
	data := t.TempDir()
	code := e.codes[10]
	tok := e.communeLinks(t, data, []string{code})[code]
	operator := e.operatorToken(t, data)
	c := newClient(t)
	srv := e.start(t, data)
	d := decl{Commune: code, Date: e.yesterday, Place: "ehpad", Count: 7, IdempotencyKey: newKey(), token: tok}
	var wg sync.WaitGroup
	statuses, ids := make([]int, 20), make([]string, 20)
	start := make(chan struct{})
	for i := range statuses {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			st, got, err := c.post(srv.base, d)
			if err != nil {
				t.Errorf("post %d: %v", i, err)
			}
			statuses[i], ids[i] = st, got.ID
		}(i)
	}
	close(start)
	wg.Wait()
	created := 0
	for i, st := range statuses {
		if st == http.StatusCreated {
			created++
		} else if st != http.StatusOK {
			t.Fatalf("post %d: status %d", i, st)
		}
		if ids[i] != ids[0] {
			t.Fatalf("one key, several ids: %v", ids)
		}
	}
	if created != 1 {
		t.Fatalf("one key, %d answers 201: %v", created, statuses)
	}
	srv.kill9(t)
	srv = e.start(t, data)
	st, got, err := c.post(srv.base, d)
	if err != nil || st != http.StatusOK || got.ID != ids[0] {
		t.Fatalf("after restart: status %d id %s (want 200 %s) %v", st, got.ID, ids[0], err)
	}
	total, per := c.totals(t, srv.base, operator)
	if total != 7 || per[code] != 7 || len(per) != 1 {
		t.Fatalf("totals %d %v, want 7 once", total, per)
	}
	var list struct {
		Declarations []stored `json:"declarations"`
	}
	if c.getJSON(t, srv.base, "/api/v1/declarations", tok, &list) != http.StatusOK || len(list.Declarations) != 1 {
		t.Fatalf("declarations stored: %+v", list.Declarations)
	}
}

// testConcurrency: 50 declarant clients × 40 declarations in parallel over
// HTTP; every commune's total and the département's are exact, before and
// after a restart.
func (e *env) testConcurrency(t *testing.T) {
	const clients, each = 50, 40
	data := t.TempDir()
	codes := e.codes[100 : 100+clients]
	tokens := e.communeLinks(t, data, codes)
	operator := e.operatorToken(t, data)
	c := newClient(t)
	srv := e.start(t, data)
	led := &ledger{ids: map[string]bool{}}
	var wg sync.WaitGroup
	begin := time.Now()
	for i, code := range codes {
		wg.Add(1)
		go func(i int, code string) {
			defer wg.Done()
			for j := 0; j < each; j++ {
				d := decl{Commune: code, Date: []string{e.yesterday, e.dayBefore}[j%2], Place: places[(i+j)%4],
					Count: 1 + j%3, IdempotencyKey: newKey(), token: tokens[code]}
				st, got, err := c.post(srv.base, d)
				if err != nil || st != http.StatusCreated {
					t.Errorf("client %d declaration %d: %d %v", i, j, st, err)
					return
				}
				d.id = got.ID
				led.add(t, d)
			}
		}(i, code)
	}
	wg.Wait()
	elapsed := time.Since(begin)
	if t.Failed() {
		t.FailNow()
	}
	const perCommune = 14*1 + 13*2 + 13*3 // 1 + j%3 over j in 0..39
	check := func(when string) {
		total, per := c.totals(t, srv.base, operator)
		if total != clients*perCommune || len(per) != clients {
			t.Fatalf("%s: total %d over %d communes, want %d over %d", when, total, len(per), clients*perCommune, clients)
		}
		for _, code := range codes {
			if per[code] != perCommune {
				t.Fatalf("%s: commune %s total %d, want %d", when, code, per[code], perCommune)
			}
		}
	}
	check("live")
	t.Logf("%d declarations by %d clients in %v (%.0f/s), %d ids distinct", clients*each, clients,
		elapsed.Round(time.Millisecond), float64(clients*each)/elapsed.Seconds(), len(led.ids))
	srv.stop(t)
	srv = e.start(t, data)
	check("after restart")
}
