// The chain of the new-workload form: steps picked from GET /operations, each with a form made from its
// parameters (their type, range, default and choices), moved up and down and removed. A step that may only
// be last (format) is offered to the last step only, and a step added after it goes before it. The server
// has the last word: the chain goes to POST /workloads as given, and its 422 names the step.
import { h, replace } from '../dom.js';
import type { OperationCatalogue, OperationView, ParamValue, ParamView, StepRequest } from '../types.js';

/** A parameter's field, and how to read what it holds (undefined: not given, the server's default applies). */
interface Field {
  element: HTMLElement;
  read(): ParamValue | undefined;
}

interface Step {
  operation: OperationView;
  element: HTMLElement;
  fields: Map<string, Field>;
  choice: HTMLSelectElement;
  number: HTMLElement;
  up: HTMLButtonElement;
  down: HTMLButtonElement;
}

/** What a field says of its parameter: the default, or that it is required or optional. */
function hint(param: ParamView): string {
  if (param.default !== undefined && param.default !== null) return `default ${String(param.default)}`;
  return param.required ? 'required' : 'optional';
}

function range(param: ParamView): string {
  return param.minimum !== undefined && param.maximum !== undefined ? `${param.minimum}–${param.maximum}` : '';
}

function field(param: ParamView, position: () => number): Field {
  const testId = `param-${param.name}`;
  const label = (control: HTMLElement): HTMLElement =>
    h(
      'label',
      { class: param.type === 'boolean' ? 'param check' : 'param', title: param.description },
      h(
        'span',
        {},
        param.name,
        param.required ? h('span', { class: 'required', 'aria-hidden': 'true' }, ' *') : null,
        range(param) ? h('span', { class: 'range' }, ` ${range(param)}`) : null,
      ),
      control,
    );
  switch (param.type) {
    case 'integer':
    case 'number': {
      const input = h('input', {
        type: 'number',
        name: param.name,
        min: param.minimum,
        max: param.maximum,
        step: param.type === 'integer' ? 1 : 'any',
        placeholder: hint(param),
        required: param.required,
        'data-testid': testId,
      });
      return {
        element: label(input),
        read: () => {
          if (input.validity.badInput)
            throw new Error(
              `step ${position()}: "${param.name}" must be a number` +
                (param.minimum !== undefined ? ` from ${param.minimum} to ${param.maximum}` : ''),
            );
          return input.value.trim() === '' ? undefined : Number(input.value);
        },
      };
    }
    case 'enum': {
      const values = param.values ?? [];
      const select = h(
        'select',
        { name: param.name, 'data-testid': testId },
        // a required choice without a default is the user's to make
        param.default === undefined ? h('option', { value: '' }, param.required ? 'choose…' : 'default') : null,
        ...values.map((value) =>
          h('option', { value: String(value), selected: value === param.default }, String(value)),
        ),
      );
      return {
        element: label(select),
        read: () => values.find((value) => String(value) === select.value),
      };
    }
    case 'boolean': {
      const box = h('input', {
        type: 'checkbox',
        name: param.name,
        checked: param.default === true,
        'data-testid': testId,
      });
      return { element: label(box), read: () => box.checked };
    }
  }
}

/** The steps of a chain being built, and the chain they make. */
export class ChainBuilder {
  readonly element: HTMLElement;
  private readonly list = h('ol', { class: 'chain-steps', 'data-testid': 'chain-steps' });
  private readonly add: HTMLButtonElement;
  private readonly note = h('span', { class: 'muted' });
  private steps: Step[] = [];

  constructor(private readonly catalogue: OperationCatalogue) {
    this.add = h(
      'button',
      { type: 'button', class: 'small', onclick: () => this.addStep(), 'data-testid': 'add-step' },
      '+ Add step',
    );
    this.element = h(
      'div',
      { class: 'chain-builder', 'data-testid': 'chain-builder' },
      this.list,
      h('div', { class: 'row' }, this.add, this.note),
    );
    this.addStep();
  }

  /** The chain as POST /workloads takes it; throws when a field holds what is not a value. */
  chain(): StepRequest[] {
    return this.steps.map((step) => {
      const request: StepRequest = { op: step.operation.op };
      for (const [name, input] of step.fields) {
        const value = input.read();
        if (value !== undefined) request[name] = value;
      }
      return request;
    });
  }

  /** Marks the step a refusal names ("step 2 (resize): ..."), or none. */
  showRefusal(message: string | null): void {
    const named = message === null ? null : /^step (\d+)\b/.exec(message);
    const index = named ? Number(named[1]) - 1 : -1;
    for (const [at, step] of this.steps.entries()) step.element.classList.toggle('invalid', at === index);
  }

  /** Back to one step, as new. */
  reset(): void {
    this.steps = [];
    replace(this.list);
    this.addStep();
  }

  private addStep(): void {
    if (this.steps.length >= this.catalogue.max_steps) return;
    const first = this.catalogue.operations.find((operation) => !operation.last_only);
    if (!first) return;
    // a step that must stay last stays last
    const last = this.steps.at(-1);
    const at = last?.operation.last_only ? this.steps.length - 1 : this.steps.length;
    this.steps.splice(at, 0, this.makeStep(first));
    this.render();
    this.steps[at]?.choice.focus();
  }

  private makeStep(operation: OperationView): Step {
    const position = (): number => this.steps.indexOf(step) + 1;
    const fields = new Map(operation.params.map((param) => [param.name, field(param, position)]));
    const choice = h(
      'select',
      {
        'aria-label': 'operation',
        'data-testid': 'step-op',
        onchange: () => this.replaceStep(step, choice.value),
      },
      ...this.catalogue.operations.map((option) =>
        h('option', { value: option.op, selected: option.op === operation.op }, option.op),
      ),
    );
    const button = (testId: string, label: string, text: string, onclick: () => void): HTMLButtonElement =>
      h(
        'button',
        { type: 'button', class: 'small', 'aria-label': label, title: label, onclick, 'data-testid': testId },
        text,
      );
    const number = h('span', { class: 'step-number' });
    const step: Step = {
      operation,
      fields,
      choice,
      number,
      up: button('step-up', 'Move up', '↑', () => this.move(step, -1)),
      down: button('step-down', 'Move down', '↓', () => this.move(step, 1)),
      element: h('li', { class: 'step', 'data-testid': 'chain-step', 'data-op': operation.op }),
    };
    replace(
      step.element,
      h(
        'div',
        { class: 'step-head' },
        number,
        choice,
        h('span', { class: 'muted description' }, operation.description),
        h('span', { class: 'spacer' }),
        step.up,
        step.down,
        button('step-remove', 'Remove', '✕', () => this.remove(step)),
      ),
      fields.size > 0 ? h('div', { class: 'params' }, ...[...fields.values()].map((input) => input.element)) : null,
    );
    return step;
  }

  private replaceStep(step: Step, op: string): void {
    const operation = this.catalogue.operations.find((candidate) => candidate.op === op);
    const at = this.steps.indexOf(step);
    if (!operation || at < 0) return;
    this.steps[at] = this.makeStep(operation);
    this.render();
    this.steps[at]?.choice.focus();
  }

  private move(step: Step, by: number): void {
    const from = this.steps.indexOf(step);
    const to = from + by;
    if (from < 0 || to < 0 || to >= this.steps.length) return;
    this.steps.splice(from, 1);
    this.steps.splice(to, 0, step);
    this.render();
  }

  private remove(step: Step): void {
    this.steps = this.steps.filter((kept) => kept !== step);
    this.render();
  }

  /** Numbers, the choices each step may take and the moves it may make, for the order the steps are in now. */
  private render(): void {
    replace(this.list, ...this.steps.map((step) => step.element));
    const count = this.steps.length;
    this.steps.forEach((step, index) => {
      const last = index === count - 1;
      step.number.textContent = String(index + 1);
      step.choice.setAttribute('aria-label', `operation of step ${index + 1}`);
      for (const option of step.choice.options) {
        const operation = this.catalogue.operations.find((candidate) => candidate.op === option.value);
        option.disabled = operation?.last_only === true && !last;
      }
      // nothing goes past a last-only step
      const next = this.steps[index + 1];
      step.up.disabled = index === 0 || step.operation.last_only;
      step.down.disabled = last || next?.operation.last_only === true || step.operation.last_only;
      step.element.classList.remove('invalid');
    });
    this.add.disabled = count >= this.catalogue.max_steps;
    this.note.textContent =
      count === 0
        ? 'Add a step: the images go through the steps in order.'
        : `${count} of at most ${this.catalogue.max_steps} steps · hover a field for what it does`;
  }
}
