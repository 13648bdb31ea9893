package rtcpeer

import (
	"sync"

	"github.com/pion/webrtc/v4"
)

// Pair is two Nodes, "a" and "b", that signal to each other in process,
// without a server: same PeerConnections, tracks, data channels and trickle
// as two Clients, so the time they take to connect is the floor a signaling
// server adds to.
type Pair struct {
	A, B   *Node
	pa, pb *pump
}

// NewPair builds both Nodes with cfg. Call Connect to start.
func NewPair(cfg Config) (*Pair, error) {
	p := &Pair{pa: newPump(), pb: newPump()}
	da, db := &direct{from: "a", q: p.pb}, &direct{from: "b", q: p.pa}
	var err error
	if p.A, err = newNode(cfg, da); err != nil {
		return nil, err
	}
	if p.B, err = newNode(cfg, db); err != nil {
		return nil, err
	}
	da.to, db.to = p.B, p.A
	p.A.setIdentity("a", cfg.ICEServers)
	p.B.setIdentity("b", cfg.ICEServers)
	go p.pa.run()
	go p.pb.run()
	return p, nil
}

// Connect makes A offer to B, as a newcomer offers to a member.
func (p *Pair) Connect() { p.pa.push(func() { p.A.offerTo("b", false) }) }

// Close stops signaling and closes both Nodes' PeerConnections.
func (p *Pair) Close() {
	p.pa.stop()
	p.pb.stop()
	var wg sync.WaitGroup
	wg.Go(p.A.closeLinks)
	wg.Go(p.B.closeLinks)
	wg.Wait()
}

// direct delivers one Node's signaling to the other's pump, which applies
// it in order on the other Node, as a socket reader would.
type direct struct {
	from string
	to   *Node
	q    *pump
}

func (d *direct) sendSDP(typ, _, sdp string) error {
	d.q.push(func() {
		if typ == "offer" {
			d.to.onOffer(d.from, sdp)
		} else {
			d.to.onAnswer(d.from, sdp)
		}
	})
	return nil
}

func (d *direct) sendCandidate(_ string, c webrtc.ICECandidateInit) error {
	d.q.push(func() { d.to.onCandidate(d.from, c) })
	return nil
}

// pump runs queued functions one at a time, in order. push never blocks:
// pion calls it from its callbacks.
type pump struct {
	mu      sync.Mutex
	q       []func()
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

func newPump() *pump {
	return &pump{wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
}

func (p *pump) push(f func()) {
	p.mu.Lock()
	p.q = append(p.q, f)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pump) run() {
	defer close(p.stopped)
	for {
		select {
		case <-p.done:
			return
		case <-p.wake:
		}
		p.mu.Lock()
		q := p.q
		p.q = nil
		p.mu.Unlock()
		for _, f := range q {
			f()
		}
	}
}

// stop ends run (after the function in progress) and waits for it.
func (p *pump) stop() {
	p.once.Do(func() { close(p.done) })
	<-p.stopped
}
