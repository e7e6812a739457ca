// Injected into every JupyterLab page of the browser tests (page.add_init_script).
// Reads the state of the open notebook through the JupyterLab application object
// (the server runs with --LabApp.expose_app_in_browser) and times slider moves.
// The tests act like a student (menus, buttons, keyboard); this only looks.
window.__nn = {
  panel() {
    const app = window.jupyterapp;
    return app && app.shell && app.shell.currentWidget;
  },

  kernelStatus() {
    const w = this.panel();
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return k ? k.status : null;
  },

  kernelIdle() { return this.kernelStatus() === 'idle'; },

  notebookReady() {
    const w = this.panel();
    return !!(w && w.content && w.content.model && w.context && w.context.isReady && this.kernelIdle());
  },

  // Every code cell has run (it has an execution count, none is queued or running) and the
  // kernel is idle again.
  allRun() {
    const w = this.panel();
    const cells = w.content.model.cells;
    for (let i = 0; i < cells.length; i++) {
      const c = cells.get(i);
      if (c.type !== 'code' || !c.sharedModel.getSource().trim()) continue;
      if (c.executionCount === null || c.executionState === 'running') return false;
    }
    return this.kernelIdle();
  },

  // Errors and stderr: in the cells' outputs (the model) and anywhere on screen, which
  // includes the outputs of widgets (a failing redraw shows its traceback there).
  problems() {
    const found = [];
    const cells = this.panel().content.model.cells;
    for (let i = 0; i < cells.length; i++) {
      const c = cells.get(i);
      if (c.type !== 'code') continue;
      for (const o of c.outputs.toJSON()) {
        if (o.output_type === 'error') found.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
        if (o.output_type === 'stream' && o.name === 'stderr')
          found.push(`cell ${i} wrote to stderr: ${String(o.text).slice(0, 300)}`);
      }
    }
    for (const e of document.querySelectorAll('.jp-Notebook [data-mime-type="application/vnd.jupyter.stderr"]'))
      found.push('on screen: ' + e.textContent.slice(0, 300));
    return found;
  },

  interacts() { return Array.from(document.querySelectorAll('.jp-Notebook .widget-interact')); },

  controlsOf(box) {
    return Array.from(box.querySelectorAll(
      ':scope > .widget-slider, :scope > .widget-checkbox, :scope > .widget-dropdown, ' +
      ':scope > .widget-toggle-buttons, :scope > .widget-text, :scope > .widget-inline-hbox'))
      .filter((c, i, all) => all.indexOf(c) === i);
  },

  all() {
    const out = [];
    this.interacts().forEach((box, i) => this.controlsOf(box).forEach((c, j) => out.push([i, j, box, c])));
    return out;
  },

  // [{interact, index, kind, label}] for every control of every interactive figure.
  controls() {
    return this.all().map(([i, j, box, c]) => {
      const kind = c.classList.contains('widget-slider') ? 'slider'
        : c.classList.contains('widget-checkbox') ? 'checkbox'
        : c.classList.contains('widget-dropdown') ? 'dropdown' : 'other';
      const label = c.querySelector('.widget-label, label');
      return {interact: i, index: j, kind, label: label ? label.textContent.replace(/\u200b/g, '').trim() : ''};
    });
  },

  // The keyboard key that moves slider or checkbox k one step (away from the end it sits at).
  keyFor(k) {
    const c = this.all()[k][3];
    const h = c.querySelector('.noUi-handle');
    if (h) return Number(h.getAttribute('aria-valuetext')) >= this.sliderMax(c) ? 'ArrowLeft' : 'ArrowRight';
    return 'Space';
  },

  // The option of dropdown k to choose next: the one after the current, or the first.
  nextOption(k) {
    const sel = this.all()[k][3].querySelector('select');
    return sel.selectedIndex >= sel.options.length - 1 ? 0 : sel.selectedIndex + 1;
  },

  // The end of a slider's range. noUiSlider's aria-valuenow and aria-valuemax are rounded to
  // one decimal (0.03 reads "0.0"); aria-valuetext and the slider's own options are exact.
  sliderMax(c) {
    const target = c.querySelector('.noUi-target');
    if (target && target.noUiSlider) return Number(target.noUiSlider.options.range.max);
    return Number(c.querySelector('.noUi-handle').getAttribute('aria-valuemax'));
  },

  value(k) {
    const c = this.all()[k][3];
    const h = c.querySelector('.noUi-handle');
    if (h) return h.getAttribute('aria-valuetext');
    const sel = c.querySelector('select');
    if (sel) return sel.value;
    const box = c.querySelector('input[type=checkbox]');
    return box ? String(box.checked) : null;
  },

  signature(out) {
    let s = out.textContent;
    for (const img of out.querySelectorAll('img')) s += '|' + img.getAttribute('src');
    return s;
  },

  // Before a key press on control k: remember its figure's output and time every change.
  arm(k) {
    const box = this.all()[k][2];
    const out = box.querySelector(':scope > .widget-output');
    if (this.observer) this.observer.disconnect();
    const st = {out, before: this.signature(out), keyAt: null, changes: []};
    this.state = st;
    // A change of what the output shows: nodes added or removed, text, an attribute such as an
    // image's src. Not a style: JupyterLab pins the output's min-height while it replaces the
    // output and unpins it 50 ms later (OutputArea._preventHeightChangeJitter); nothing new shows then.
    this.observer = new MutationObserver(records => {
      if (records.some(r => !(r.type === 'attributes' && r.attributeName === 'style')))
        st.changes.push(performance.now());
    });
    this.observer.observe(out, {subtree: true, childList: true, attributes: true, characterData: true});
    // the move starts with a key press, or (a dropdown) with the choice of an option
    const start = e => { if (st.keyAt === null) st.keyAt = e.timeStamp; };
    for (const type of ['keydown', 'input'])
      document.addEventListener(type, start, {capture: true, once: true});
    return !!out;
  },

  // The figure changed and the kernel has finished the redraw.
  settled() {
    const st = this.state;
    return st.keyAt !== null && this.signature(st.out) !== st.before && this.kernelIdle();
  },

  changed() { return this.signature(this.state.out) !== this.state.before; },

  // Milliseconds from the key press to the last change of what the output shows.
  latency() {
    const st = this.state;
    if (this.observer) this.observer.disconnect();
    return st.changes.length ? Math.max(...st.changes) - st.keyAt : null;
  },
};
