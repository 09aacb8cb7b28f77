// http_hello.js: the Node.js side of the HTTP/1.1 keep-alive "hello"
// benchmark (tests/bench/http_bench.sh): Node's own http module, one
// thread, the same answer as examples/http_hello.lua.
//
//   node tests/bench/http_hello.js PORT
'use strict';
const http = require('http');
const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': 5});
  res.end('hello');
});
server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1', 1024, () => console.log(`http_hello on ${port}`));
