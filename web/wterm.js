// A terminal WebSocket for the workshop pages: the same typed protocol as
// app.js (binary output, JSON control messages, acks once xterm has drawn
// the output), for any terminal URL, read-only or not, reconnecting.
'use strict';

window.berthConnect = function berthConnect(term, path, opts) {
  opts = opts || {};
  const say = opts.onStatus || (() => {});
  let socket = null; let received = 0; let acked = 0; let delay = 500; let closed = false;
  const send = (m) => { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(m)); };
  const ack = () => { if (acked < received) { acked = received; send({ type: 'ack', bytes: acked }); } };
  function open() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(scheme + '//' + location.host + path);
    ws.binaryType = 'arraybuffer';
    socket = ws; received = 0; acked = 0;
    ws.onopen = () => { delay = 500; say(''); };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') {
        const bytes = new Uint8Array(ev.data);
        term.write(bytes, () => {
          received += bytes.length;
          if (received - acked >= 16384) ack(); else setTimeout(ack, 50);
          if (opts.onOutput) opts.onOutput();
        });
        return;
      }
      const m = JSON.parse(ev.data);
      if (m.type === 'hello') {
        term.reset();
        if (opts.onHello) opts.onHello(m);
        if (!m.read_only) send({ type: 'resize', rows: term.rows, cols: term.cols });
      } else if (m.type === 'skipped') { received += m.bytes; term.write('\r\n\x1b[33m[… ' + m.bytes + ' bytes skipped …]\x1b[0m\r\n'); }
      else if (m.type === 'exit') { term.write('\r\n\x1b[2m[the shell exited with ' + m.code + ']\x1b[0m\r\n'); ws.exited = true; }
      else if (m.type === 'error') { say(m.message); }
    };
    ws.onclose = () => {
      if (socket !== ws || closed) return;
      say('Connection lost — reconnecting…');
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }
  if (!opts.readOnly) {
    term.onData((data) => {
      if (socket && socket.exited) { socket.exited = false; send({ type: 'restart' }); return; }
      berthSendInput(send, data, say);
    });
    term.onResize(({ rows, cols }) => send({ type: 'resize', rows, cols }));
  }
  const pinger = setInterval(() => send({ type: 'ping' }), 20000);
  open();
  return {
    input: (data) => berthSendInput(send, data, say),
    resize: () => send({ type: 'resize', rows: term.rows, cols: term.cols }),
    close: () => { closed = true; clearInterval(pinger); if (socket) socket.close(); },
  };
};

window.berthXterm = function berthXterm(el, fontSize, readOnly) {
  const { term } = berthTerminalIn(el, { fontSize, readOnly });
  window.addEventListener('resize', () => term.fitNow());
  return term;
};

window.berthScreen = function berthScreen(term) {
  const b = term.buffer.active; const lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
  return lines.join('\n');
};

window.berthApi = async function berthApi(method, path, body) {
  const r = await fetch(path, { method, headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined, credentials: 'same-origin' });
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  return { status: r.status, data };
};
