/**
 * The policy compiler: the model in, the table's rules and sets out (model.ts says how they are
 * split). Pure: no I/O, the same model gives the same text.
 */
import { WeftError } from '../core/errors.js';
import type { CompiledPolicy, PolicyModel } from './model.js';

export function compilePolicy(model: PolicyModel): CompiledPolicy {
  void model;
  throw new WeftError('ERR_POLICY_COMPILE', 'the policy compiler is not built yet');
}
