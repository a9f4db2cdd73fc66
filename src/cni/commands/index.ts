/** The command handlers, one per CNI command (VERSION is answered by the skeleton). */
import type { Handlers } from '../skel.js';
import { cmdAdd } from './add.js';
import { cmdCheck } from './check.js';
import { cmdDel } from './del.js';
import { cmdGc } from './gc.js';
import { cmdStatus } from './status.js';

export const handlers: Handlers = { add: cmdAdd, del: cmdDel, check: cmdCheck, status: cmdStatus, gc: cmdGc };
