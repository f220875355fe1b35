// The trace explorer's enhancements. Every page works without this file: the search page
// is a plain GET form and links, the trace page opens span details with :target. This
// adds brushing on the scatter, clickable result rows, and on the trace page collapsing,
// a selection panel that follows the keyboard, #span=ID links and find-in-trace.
// Loaded with `defer` from /static (the Content-Security-Policy allows no inline script).

(() => {
  'use strict';
  document.documentElement.classList.add('js');

  const SVG = 'http://www.w3.org/2000/svg';
  const clamp = (value, low, high) => Math.min(high, Math.max(low, value));
  const trimZeros = (text) => (text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text);

  /** A duration in nanoseconds as the search form takes it: `12.5ms`, `1.25s`, `800us`. */
  function durationParam(ns) {
    if (ns >= 1e9) return `${trimZeros((ns / 1e9).toFixed(3))}s`;
    if (ns >= 1e6) return `${trimZeros((ns / 1e6).toFixed(3))}ms`;
    return `${trimZeros((ns / 1e3).toFixed(1))}us`;
  }

  /** Nanoseconds since the epoch (a BigInt) as RFC 3339 to the millisecond. */
  function timeParam(ns, roundUp) {
    const ms = ns / 1000000n + (roundUp && ns % 1000000n !== 0n ? 1n : 0n);
    return new Date(Number(ms)).toISOString();
  }

  // ---- Search page -------------------------------------------------------------------

  /** Dragging a box on the scatter searches that start-time and duration window. */
  function brushable(svg) {
    const t0 = BigInt(svg.dataset.t0);
    const t1 = BigInt(svg.dataset.t1);
    const x0 = Number(svg.dataset.x0);
    const x1 = Number(svg.dataset.x1);
    const top = Number(svg.dataset.top);
    const plot = Number(svg.dataset.plot);
    const yMin = Number(svg.dataset.ymin);
    const yMax = Number(svg.dataset.ymax);
    const log = svg.dataset.scale === 'log';
    let from = null;
    let box = null;

    const at = (event) => {
      const bounds = svg.getBoundingClientRect();
      return {
        x: clamp(event.clientX - bounds.left, 0, bounds.width),
        y: clamp(event.clientY - bounds.top, top, top + plot),
        width: bounds.width,
      };
    };
    const draw = (to) => {
      box.setAttribute('x', Math.min(from.x, to.x));
      box.setAttribute('y', Math.min(from.y, to.y));
      box.setAttribute('width', Math.abs(to.x - from.x));
      box.setAttribute('height', Math.abs(to.y - from.y));
    };
    const stop = () => {
      box?.remove();
      from = null;
      box = null;
    };
    const timeAt = (x, width) => {
      const share = clamp(((x / width) * 100 - x0) / (x1 - x0), 0, 1);
      return t0 + BigInt(Math.round(share * Number(t1 - t0)));
    };
    const durationAt = (y) => {
      const share = 1 - (y - top) / plot;
      if (!log) return Math.max(0, yMax * share);
      return 10 ** (Math.log10(yMin) + share * (Math.log10(yMax) - Math.log10(yMin)));
    };

    svg.addEventListener('pointerdown', (event) => {
      if (event.button !== 0 || event.target.closest('a')) return;
      dismiss();
      from = at(event);
      box = document.createElementNS(SVG, 'rect');
      box.setAttribute('class', 'brush');
      svg.appendChild(box);
      draw(from);
      svg.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    svg.addEventListener('pointermove', (event) => {
      if (from) draw(at(event));
    });
    svg.addEventListener('pointercancel', stop);
    let menu = null;
    let kept = null;
    const dismiss = () => {
      menu?.remove();
      kept?.remove();
      menu = null;
      kept = null;
    };
    /** Offers what to do with a selected region: zoom the search to it, or compare it. */
    const offer = (zoom, compare) => {
      menu = document.createElement('div');
      menu.className = 'brush-menu';
      menu.setAttribute('role', 'group');
      menu.setAttribute('aria-label', 'Selected region');
      const label = document.createElement('span');
      label.textContent = 'Selected region:';
      const zoomLink = document.createElement('a');
      zoomLink.href = zoom;
      zoomLink.textContent = 'Zoom to it';
      const compareLink = document.createElement('a');
      compareLink.href = compare;
      compareLink.textContent = 'What is different about it?';
      const cancel = document.createElement('button');
      cancel.type = 'button';
      cancel.className = 'secondary';
      cancel.textContent = 'Cancel';
      cancel.addEventListener('click', dismiss);
      menu.append(label, zoomLink, compareLink, cancel);
      svg.after(menu);
      compareLink.focus();
    };
    svg.addEventListener('pointerup', (event) => {
      if (!from) return;
      const to = at(event);
      const start = from;
      const drawn = box;
      box = null;
      stop();
      dismiss();
      const wide = Math.abs(to.x - start.x) >= 6;
      const tall = Math.abs(to.y - start.y) >= 6;
      if (!wide && !tall) {
        drawn?.remove();
        return;
      }
      kept = drawn;
      const params = new URLSearchParams(window.location.search);
      const region = new URLSearchParams(svg.dataset.search || '');
      region.set('selection', 'region');
      params.delete('q');
      params.delete('cursor');
      if (wide) {
        const first = timeParam(timeAt(Math.min(start.x, to.x), to.width), false);
        const last = timeParam(timeAt(Math.max(start.x, to.x), to.width), true);
        params.set('lookback', 'custom');
        params.set('start', first);
        params.set('end', last);
        region.set('selected_start', first);
        region.set('selected_end', last);
      }
      if (tall) {
        const low = durationAt(Math.max(start.y, to.y));
        const high = durationParam(Math.ceil(durationAt(Math.min(start.y, to.y))));
        if (low > (log ? yMin : 0)) {
          params.set('min_trace_duration', durationParam(low));
          region.set('selected_min_duration', durationParam(low));
        } else params.delete('min_trace_duration');
        params.set('max_trace_duration', high);
        region.set('selected_max_duration', high);
      }
      offer(`/traces?${params}`, `/traces/difference?${region}`);
    });
  }

  function searchPage() {
    const scatter = document.querySelector('svg.scatter');
    if (scatter) brushable(scatter);
    const lookback = document.getElementById('lookback');
    const custom = document.querySelector('.custom-range');
    // The services pages' range form applies a preset at once; a custom range waits for
    // its Apply button.
    const rangeForm = lookback?.closest('form.range');
    lookback?.addEventListener('change', () => {
      if (lookback.value === 'custom' && custom) custom.open = true;
      else if (rangeForm) rangeForm.requestSubmit();
    });
    const filters = document.querySelector('form.filters');
    // Typing in the last attribute condition adds an empty one after it, so a search can
    // take several at once (without JavaScript, each search shows one more empty field).
    const attributes = filters?.querySelector('.f-attrs');
    attributes?.addEventListener('input', (event) => {
      const last = [...attributes.querySelectorAll('input[name="attr"]')].pop();
      if (event.target !== last || last.value === '') return;
      const next = last.cloneNode();
      next.value = '';
      last.after(next);
    });
    // The address of a search names only what was filled in, so it reads as the query.
    filters?.addEventListener('formdata', (event) => {
      const entries = [...event.formData.entries()];
      for (const [name] of entries) event.formData.delete(name);
      for (const [name, value] of entries) if (value !== '') event.formData.append(name, value);
    });
    // The whole row opens its trace (or service); the link inside stays the way without
    // JavaScript.
    for (const body of document.querySelectorAll('.trace-list tbody, .red-table tbody')) {
      body.addEventListener('click', (event) => {
        const row = event.target.closest('tr[data-href]');
        if (!row || event.target.closest('a, input, label') || window.getSelection().toString()) return;
        if (event.ctrlKey || event.metaKey) window.open(row.dataset.href);
        else window.location.assign(row.dataset.href);
      });
    }
  }

  /** The results' "compare selected": ready with exactly two traces ticked, A the first. */
  function compareSelection() {
    const form = document.getElementById('compare-selected');
    if (!form) return;
    const boxes = Array.from(document.querySelectorAll('input[form="compare-selected"]'));
    const button = document.getElementById('compare-button');
    const count = document.getElementById('compare-count');
    const update = () => {
      const ticked = boxes.filter((box) => box.checked).length;
      button.disabled = ticked !== 2;
      count.textContent = ticked === 2 ? 'Compare these two traces side by side.'
        : ticked > 2 ? `${ticked} ticked: keep two.` : `Tick ${2 - ticked} more trace${ticked ? '' : 's'} to compare.`;
    };
    for (const box of boxes) box.addEventListener('change', update);
    update();
  }

  /** The comparison page: fold or unfold every subtree, and hide unchanged calls. */
  function comparePage(rows) {
    const tools = document.getElementById('compare-tools');
    tools.hidden = false;
    const all = () => rows.querySelectorAll('details');
    document.getElementById('compare-collapse').addEventListener('click', () => {
      for (const details of all()) details.open = false;
    });
    document.getElementById('compare-expand').addEventListener('click', () => {
      for (const details of all()) details.open = true;
    });
    document.getElementById('changes-only').addEventListener('change', (event) => {
      rows.classList.toggle('changes-only', event.target.checked);
    });
  }

  // ---- Trace page --------------------------------------------------------------------

  function tracePage(rowsBox) {
    const body = document.getElementById('trace-body');
    const rows = Array.from(rowsBox.querySelectorAll(':scope > .r'));
    const ids = rows.map((row) => row.id.slice('span-'.length));
    const depth = rows.map((row) => Number(row.dataset.depth));
    const index = new Map(ids.map((id, i) => [id, i]));
    const toggles = rows.map((row) => row.querySelector('.tw'));
    const kids = toggles.map((button) => (button ? Number(button.dataset.kids) : 0));
    const folded = new Uint8Array(rows.length);
    let selected = -1;
    let cursor = -1;
    let shown = null;

    const link = (i) => rows[i].querySelector('.n a');

    /** Hides the rows under folded rows, touching only rows that change. */
    function applyFolds() {
      let limit = -1;
      for (let i = 0; i < rows.length; i += 1) {
        const hide = limit >= 0 && depth[i] > limit;
        if (!hide) limit = folded[i] ? depth[i] : -1;
        if (rows[i].hidden !== hide) rows[i].hidden = hide;
      }
    }

    function setFold(i, fold) {
      if (!kids[i] || Boolean(folded[i]) === fold) return;
      folded[i] = fold ? 1 : 0;
      rows[i].classList.toggle('folded', fold);
      toggles[i].setAttribute('aria-expanded', String(!fold));
      toggles[i].setAttribute('aria-label', fold ? 'Expand' : 'Collapse');
      const name = rows[i].querySelector('.n');
      if (fold) name.dataset.folded = String(kids[i]);
      else delete name.dataset.folded;
    }

    function fold(i, value) {
      setFold(i, value);
      applyFolds();
      if (cursor >= 0 && rows[cursor].hidden) focusRow(i);
    }

    /** Unfolds every ancestor of row i; true when something changed. */
    function unfoldAncestors(i) {
      let changed = false;
      let d = depth[i];
      for (let j = i - 1; j >= 0 && d > 0; j -= 1) {
        if (depth[j] < d) {
          if (folded[j]) {
            setFold(j, false);
            changed = true;
          }
          d = depth[j];
        }
      }
      return changed;
    }

    function focusRow(i) {
      cursor = i;
      link(i).focus();
    }

    /** The resource's attributes, copied into the panel the first time it opens. */
    function inlineResource(detail) {
      if (detail.dataset.inlined) return;
      detail.dataset.inlined = '1';
      const table = document.querySelector(`#resource-${detail.dataset.resource} .attrs`);
      const slot = detail.querySelector('.resource-slot');
      if (table && slot) slot.replaceChildren(table.cloneNode(true));
    }

    function select(i, { focus = true } = {}) {
      if (unfoldAncestors(i)) applyFolds();
      if (selected >= 0) {
        rows[selected].classList.remove('sel');
        link(selected).removeAttribute('aria-current');
      }
      selected = i;
      rows[i].classList.add('sel');
      link(i).setAttribute('aria-current', 'true');
      const detail = document.getElementById(`detail-${ids[i]}`);
      shown?.classList.remove('on');
      if (detail) {
        detail.classList.add('on');
        inlineResource(detail);
        shown = detail;
      }
      body.classList.add('open');
      document.getElementById('panel').scrollTop = 0;
      window.history.replaceState(null, '', `#span=${ids[i]}`);
      if (focus) focusRow(i);
      else cursor = i;
      // Nearest keeps the row where it is when it can be seen; on a phone the row's
      // scroll margin keeps it above the panel.
      rows[i].scrollIntoView({ block: focus ? 'nearest' : 'center' });
    }

    function close() {
      if (selected >= 0) {
        rows[selected].classList.remove('sel');
        link(selected).removeAttribute('aria-current');
      }
      shown?.classList.remove('on');
      shown = null;
      body.classList.remove('open');
      window.history.replaceState(null, '', window.location.pathname + window.location.search);
      if (selected >= 0) focusRow(selected);
      selected = -1;
    }

    /** Moves the cursor; with the panel open the panel follows it. */
    function moveTo(i) {
      if (i < 0 || i >= rows.length) return;
      if (selected >= 0) select(i);
      else focusRow(i);
    }

    function step(from, direction) {
      for (let i = from + direction; i >= 0 && i < rows.length; i += direction) {
        if (!rows[i].hidden) return i;
      }
      return -1;
    }

    function parent(i) {
      for (let j = i - 1; j >= 0; j -= 1) if (depth[j] < depth[i]) return j;
      return -1;
    }

    rowsBox.addEventListener('click', (event) => {
      const row = event.target.closest('.r');
      if (!row) return;
      const i = index.get(row.id.slice('span-'.length));
      if (event.target.closest('.tw')) {
        fold(i, !folded[i]);
        return;
      }
      if (event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      if (selected === i) close();
      else select(i);
    });
    rowsBox.addEventListener('focusin', (event) => {
      const row = event.target.closest('.r');
      if (row) cursor = index.get(row.id.slice('span-'.length));
    });
    rowsBox.addEventListener('keydown', (event) => {
      if (event.altKey || event.ctrlKey || event.metaKey || cursor < 0) return;
      const i = cursor;
      let handled = true;
      switch (event.key) {
        case 'ArrowDown':
        case 'j':
          moveTo(step(i, 1));
          break;
        case 'ArrowUp':
        case 'k':
          moveTo(step(i, -1));
          break;
        case 'ArrowRight':
          if (kids[i] && folded[i]) fold(i, false);
          else if (kids[i]) moveTo(i + 1);
          break;
        case 'ArrowLeft':
          if (kids[i] && !folded[i]) fold(i, true);
          else moveTo(parent(i));
          break;
        case 'Home':
          moveTo(step(-1, 1));
          break;
        case 'End':
          moveTo(step(rows.length, -1));
          break;
        default:
          handled = false;
      }
      if (handled) event.preventDefault();
    });

    const panel = document.getElementById('panel');
    panel.addEventListener('click', (event) => {
      const target = event.target.closest('a');
      if (!target) return;
      if (target.classList.contains('close')) {
        event.preventDefault();
        close();
      } else if (target.dataset.span && index.has(target.dataset.span)) {
        event.preventDefault();
        select(index.get(target.dataset.span));
      }
    });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && selected >= 0 && event.target.id !== 'find') close();
    });

    /** #span=ID (and the no-JavaScript anchors #span-ID and #detail-ID) select that span. */
    function fromHash() {
      const match = /^#(?:span=|span-|detail-)([0-9a-f]{16})$/.exec(window.location.hash);
      if (match && index.has(match[1])) select(index.get(match[1]), { focus: false });
    }
    window.addEventListener('hashchange', fromHash);
    fromHash();

    // Toolbar: collapse or expand everything, find spans.
    const toolbar = document.getElementById('toolbar');
    toolbar.hidden = false;
    document.getElementById('collapse-all').addEventListener('click', () => {
      kids.forEach((n, i) => setFold(i, n > 0));
      applyFolds();
    });
    document.getElementById('expand-all').addEventListener('click', () => {
      kids.forEach((n, i) => setFold(i, false));
      applyFolds();
    });
    const criticalPath = document.getElementById('critical-path');
    criticalPath?.addEventListener('change', () => {
      document.documentElement.classList.toggle('no-cp', !criticalPath.checked);
    });

    const find = document.getElementById('find');
    const count = document.getElementById('find-count');
    let haystacks = null;
    let matches = [];
    let pending = 0;
    const haystack = (i) => {
      const detail = document.getElementById(`detail-${ids[i]}`);
      const parts = [rows[i].querySelector('.n').textContent, ids[i]];
      if (detail) {
        // The span's own attributes, events, error and links; not the resource it shares.
        for (const node of detail.querySelectorAll(':scope > .attrs tr, .events p, .events tr, .exception, .status-error, .links li')) {
          parts.push(node.textContent);
        }
      }
      return parts.join(' ').toLowerCase();
    };
    function runFind() {
      const query = find.value.trim().toLowerCase();
      matches = [];
      if (query && !haystacks) haystacks = rows.map((_, i) => haystack(i));
      let unfolded = false;
      for (let i = 0; i < rows.length; i += 1) {
        const hit = Boolean(query) && haystacks[i].includes(query);
        rows[i].classList.toggle('match', hit);
        if (hit) {
          matches.push(i);
          unfolded = unfoldAncestors(i) || unfolded;
        }
      }
      if (unfolded) applyFolds();
      rowsBox.classList.toggle('finding', Boolean(query));
      count.textContent = query ? `${matches.length} of ${rows.length} spans` : '';
    }
    find.addEventListener('input', () => {
      window.clearTimeout(pending);
      pending = window.setTimeout(runFind, rows.length > 2000 ? 200 : 60);
    });
    find.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        find.value = '';
        runFind();
      } else if (event.key === 'Enter') {
        event.preventDefault();
        window.clearTimeout(pending);
        runFind();
        if (!matches.length) return;
        const from = selected >= 0 ? selected : cursor;
        const next = event.shiftKey
          ? [...matches].reverse().find((i) => i < from) ?? matches[matches.length - 1]
          : matches.find((i) => i > from) ?? matches[0];
        select(next, { focus: false });
      }
    });
  }

  // ---- Services charts -----------------------------------------------------------------

  /**
   * A chart's step under the pointer: its column lit and its numbers in a tip beside it,
   * at once rather than after the browser's title delay. Without JavaScript each step's
   * <title> does the same.
   */
  function charts() {
    for (const box of document.querySelectorAll('.chart .plot-box')) {
      const columns = [...box.querySelectorAll('.hover rect')];
      if (!columns.length) continue;
      const texts = columns.map((rect) => {
        const title = rect.querySelector('title');
        const text = title?.textContent ?? '';
        title?.remove();
        return text;
      });
      const tip = document.createElement('div');
      tip.className = 'chart-tip';
      tip.hidden = true;
      box.append(tip);
      let lit = null;
      const hide = () => {
        tip.hidden = true;
        lit?.classList.remove('on');
        lit = null;
      };
      box.addEventListener('pointermove', (event) => {
        const frame = box.querySelector('svg.plot').getBoundingClientRect();
        const share = (event.clientX - frame.left) / frame.width;
        if (share < 0 || share >= 1 || event.clientY > frame.bottom) return hide();
        const i = clamp(Math.floor(share * columns.length), 0, columns.length - 1);
        if (lit !== columns[i]) {
          lit?.classList.remove('on');
          lit = columns[i];
          lit.classList.add('on');
          tip.textContent = texts[i];
        }
        tip.hidden = false;
        const x = event.clientX - box.getBoundingClientRect().left;
        const right = x > box.clientWidth / 2;
        tip.style.left = right ? '' : `${x + 12}px`;
        tip.style.right = right ? `${box.clientWidth - x + 12}px` : '';
      });
      box.addEventListener('pointerleave', hide);
    }
  }

  // ---- Service map ---------------------------------------------------------------------

  /** A map taller than its box opens with the services nobody calls in view. */
  function mapPage() {
    const box = document.querySelector('.map-scroll');
    const map = box?.querySelector('svg.service-map');
    if (!map || box.scrollHeight <= box.clientHeight) return;
    const focus = Number(map.dataset.focusY) || 0;
    box.scrollTop = Math.max(0, focus - box.clientHeight / 3);
  }

  function start() {
    mapPage();
    charts();
    const rowsBox = document.getElementById('wf-rows');
    const compareRows = document.getElementById('cmp-rows');
    if (rowsBox) tracePage(rowsBox);
    else if (compareRows) comparePage(compareRows);
    else {
      searchPage();
      compareSelection();
    }
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
