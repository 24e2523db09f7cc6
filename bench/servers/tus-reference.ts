// The reference Node implementation: @tus/server with @tus/file-store on node:http, default options.
import http from 'node:http';
import path from 'node:path';
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';
import { dataDirArg, serve } from './common.js';

const directory = path.resolve(dataDirArg());
const tus = new Server({ path: '/files', datastore: new FileStore({ directory }) });
const server = http.createServer((req, res) => {
  void tus.handle(req, res);
});
serve(server, 'tus-reference');
