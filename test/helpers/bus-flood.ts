// A stranger flooding a bus port, run as its own process (so its sends do not share the server's event
// loop): `node bus-flood.js <port> <connections> <bytes> <seconds>`. Each of <connections> nanomsg REQ
// sockets on 127.0.0.1:<port> sends <bytes> of junk JSON (a request with a huge string, the most a
// parser has to read) as soon as its previous one is answered, and again every second when it is not
// (the server may drop the connection instead of answering). Stops by itself after <seconds> and prints
// `{"sent": n, "answered": n}` on stdout.
import nano from 'nanomsg';

const [port, connections, bytes, seconds] = process.argv.slice(2).map(Number);
if (!port || !connections || !bytes || !seconds)
  throw new Error('usage: bus-flood <port> <connections> <bytes> <seconds>');

const head = '{"jsonrpc":"2.0","id":1,"method":"register","params":{"secret":"guess","name":"';
const tail = '"}}';
const junk = Buffer.from(head + 'j'.repeat(Math.max(0, bytes - head.length - tail.length)) + tail);

let sent = 0;
let answered = 0;
const sockets = Array.from({ length: connections }, () => {
  const socket = nano.socket('req', { linger: 0, rcvmaxsize: -1, reconn: 100, maxreconn: 1000 });
  socket.on('error', () => undefined);
  socket.connect(`tcp://127.0.0.1:${port}`);
  let lastSend = 0;
  const send = (): void => {
    lastSend = Date.now();
    sent += 1;
    socket.send(junk);
  };
  socket.on('data', () => {
    answered += 1;
    send();
  });
  send();
  return { stale: () => Date.now() - lastSend > 1000, send };
});

const resender = setInterval(() => {
  for (const peer of sockets) if (peer.stale()) peer.send();
}, 250);

// the sockets are left to the process's exit: closing hundreds of REQ sockets with a request in flight trips
// an assertion inside nanomsg (chunk.c) and aborts
setTimeout(() => {
  clearInterval(resender);
  process.stdout.write(`${JSON.stringify({ sent, answered })}\n`, () => process.exit(0));
}, seconds * 1000);
