// The only script of the app: small behaviours htmx does not cover. No inline JS
// anywhere (the CSP forbids it); everything is wired here by data- attributes.
(function () {
  "use strict";

  function composerBar() { return document.getElementById("composer-bar"); }

  // Send is swapped for Stop while any answer streams.
  function syncBusy() {
    var bar = composerBar();
    if (!bar) return;
    var busy = !!document.querySelector('[data-role="assistant"][data-status="streaming"]');
    bar.toggleAttribute("data-busy", busy);
  }

  function messages() { return document.getElementById("messages"); }
  var stickToBottom = true;

  function nearBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 80; }
  // Where our own last scroll left the list: a scroll event there is ours, not the user's
  // (text appended since would otherwise read as "scrolled away from the bottom").
  var ownScrollTop = null;
  function scrollDown() {
    var el = messages();
    if (el && stickToBottom) { el.scrollTop = el.scrollHeight; ownScrollTop = el.scrollTop; }
  }
  // At most one scroll (so one layout) per animation frame, however many frames arrive:
  // reading scrollHeight lays the page out, which costs ~the whole streaming text.
  var scrollQueued = false;
  function scheduleScroll() {
    if (scrollQueued) return;
    scrollQueued = true;
    requestAnimationFrame(function () { scrollQueued = false; scrollDown(); });
  }

  document.addEventListener("scroll", function (e) {
    var el = e.target;
    if (el !== messages()) return;
    if (el.scrollTop !== ownScrollTop) { stickToBottom = nearBottom(el); ownScrollTop = null; }
  }, true);

  // Enter sends, Shift+Enter is a new line (IME composition is left alone); or, with the
  // help dialog's toggle, Ctrl/Cmd+Enter sends and Enter is a new line (sendKeyPressed).
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (!(t instanceof HTMLTextAreaElement) || !t.hasAttribute("data-enter-sends")) return;
    if (e.key === "Enter" && sendKeyPressed(e) && !e.isComposing) {
      e.preventDefault();
      if (t.form) t.form.requestSubmit();
    }
    if (e.key === "Escape") {
      var stop = document.querySelector("#stop-form");
      if (stop && composerBar() && composerBar().hasAttribute("data-busy")) stop.requestSubmit();
    }
  });

  // Capture phase, so it runs before htmx's own submit handling.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.hasAttribute("data-confirm") && !window.confirm(form.getAttribute("data-confirm"))) {
      e.preventDefault(); e.stopImmediatePropagation(); return;
    }
    if (form.id === "composer") {
      var text = form.querySelector("textarea");
      // One send per composer: the server replaces the form once it saved the message.
      if (form.hasAttribute("data-pending") || (text && !text.value.trim())) {
        e.preventDefault(); e.stopImmediatePropagation(); return;
      }
      form.setAttribute("data-pending", "");
      stickToBottom = true;
    }
  }, true);

  document.addEventListener("click", function (e) {
    // A phone's "More actions" (⋯) closes on any click outside its menu, first of all.
    var moreActions = e.target.closest && e.target.closest("[data-conv-more]");
    var openActions = document.querySelector(".conv-actions[data-more-open]");
    if (openActions && !moreActions && !(e.target.closest && e.target.closest("#conv-more-items"))) {
      setMoreActions(false);
    }
    var closer = e.target.closest && e.target.closest("[data-close]");
    if (closer) { var d = closer.closest("dialog"); if (d) d.close(); return; }
    var reset = e.target.closest && e.target.closest("[data-reset]");
    if (reset) {
      var box = paramBox(reset);
      var field = box.querySelector("[name^='param:']");
      var range = box.querySelector("input[type=range]");
      if (range) range.value = range.getAttribute("data-default");
      field.value = "";
      markUnset(box);
      field.dispatchEvent(new Event("change", { bubbles: true }));
      return;
    }
    var toggle = e.target.closest && e.target.closest("[data-toggle-panel]");
    if (toggle) {
      var grid = document.querySelector(".conv-grid");
      if (grid && NARROW.matches) {
        // A sheet over the conversation: opened here, closed by its ✕, the backdrop or Esc.
        setSheet(grid, !grid.classList.contains("sheet-open"));
      } else if (grid) {
        var hidden = grid.classList.toggle("panel-hidden");
        toggle.setAttribute("aria-pressed", String(hidden));
        try { localStorage.setItem("playground.panelHidden", hidden ? "1" : ""); } catch (err) { /* private mode */ }
      }
      return;
    }
    var more = e.target.closest && e.target.closest("[data-lanes-more]");
    if (more) {
      // The lane heads' own button, or the toolbar's copy of it (on a phone).
      var heads = document.querySelector(".lanes-head");
      if (heads) heads.setAttribute("data-more", "");
      document.querySelectorAll("[data-lanes-more]").forEach(function (b) {
        b.setAttribute("aria-expanded", "true");
      });
      return;
    }
    // A phone's "More actions" (⋯): the less used actions, in a menu under it.
    if (moreActions) {
      setMoreActions(!moreActions.closest(".conv-actions").hasAttribute("data-more-open"));
      return;
    }
    if (e.target.closest && e.target.closest("[data-drawer-toggle]")) {
      var app = document.getElementById("app");
      if (app) setDrawer(app, !app.hasAttribute("data-drawer-open"));
      return;
    }
    // Edit a sent question: a copy of the page's one edit box, under the question.
    var editor = e.target.closest && e.target.closest("[data-edit]");
    if (editor) {
      var article = editor.closest("article");
      var open = article && article.querySelector(".msg-edit");
      var template = document.getElementById("edit-template");
      if (open) { open.remove(); return; }
      if (!article || !template) return;
      var form = template.content.firstElementChild.cloneNode(true);
      form.querySelector('[name="message"]').value = editor.getAttribute("data-edit");
      var area = form.querySelector("textarea");
      // The question as written, @fake lines included (the page shows them apart).
      var body = article.querySelector(".msg-body");
      area.value = body.hasAttribute("data-source") ? body.getAttribute("data-source") : body.textContent;
      body.after(form);
      htmx.process(form);
      area.focus();
      area.setSelectionRange(area.value.length, area.value.length);
      return;
    }
    var cancel = e.target.closest && e.target.closest("[data-edit-cancel]");
    if (cancel) { cancel.closest(".msg-edit").remove(); return; }
    var filler = e.target.closest && e.target.closest("[data-fill]");
    if (filler) {
      var target = document.getElementById(filler.getAttribute("data-fill"));
      if (target) { target.value = filler.getAttribute("data-value"); target.focus(); }
      return;
    }
    var confirmer = e.target.closest && e.target.closest("[data-confirm-click]");
    if (confirmer && !window.confirm(confirmer.getAttribute("data-confirm-click"))) {
      e.preventDefault(); e.stopImmediatePropagation(); return;
    }
    var whole = e.target.closest && e.target.closest("[data-copy-message]");
    if (whole) { copyMessage(whole); return; }
    var btn = e.target.closest && e.target.closest("[data-copy]");
    if (!btn) return;
    var block = btn.closest(".code-block");
    var pre = block && block.querySelector("pre");
    if (!pre || !navigator.clipboard) return;
    navigator.clipboard.writeText(pre.innerText).then(function () {
      btn.textContent = "Copied";
      setTimeout(function () { btn.textContent = "Copy"; }, 1500);
    });
  }, true);

  // Phone and tablet: the parameter panel is a sheet, the sidebar a drawer (app.css).
  var NARROW = window.matchMedia("(max-width: 1100px)");
  function setSheet(grid, open) {
    grid.classList.toggle("sheet-open", open);
    var head = document.querySelector(".conv-actions [data-toggle-panel]");
    if (head) head.setAttribute("aria-expanded", String(open));
    var target = open ? document.querySelector("#side-panel .sheet-head button") : head;
    if (target) target.focus();
  }
  function setDrawer(app, open) {
    app.toggleAttribute("data-drawer-open", open);
    var button = app.querySelector(".topbar [data-drawer-toggle]");
    if (button) button.setAttribute("aria-expanded", String(open));
    // Focus moves into the drawer, to its Close button: not to the search box, whose
    // on-screen keyboard would cover the drawer on a phone.
    var target = open ? app.querySelector(".sidebar .drawer-close") : button;
    if (target) target.focus();
  }
  function setMoreActions(open) {
    var actions = document.querySelector(".conv-actions");
    var button = document.querySelector("[data-conv-more]");
    if (!actions || !button) return;
    actions.toggleAttribute("data-more-open", open);
    button.setAttribute("aria-expanded", String(open));
    if (open) {
      var first = actions.querySelector("#conv-more-items button, #conv-more-items select, #conv-more-items summary");
      if (first) first.focus();
    }
  }
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    var menu = document.getElementById("conv-more-items");
    if (menu && menu.offsetParent !== null && document.querySelector(".conv-actions[data-more-open]")) {
      setMoreActions(false);
      document.querySelector("[data-conv-more]").focus();
      return;
    }
    var app = document.getElementById("app");
    var grid = document.querySelector(".conv-grid.sheet-open");
    if (app && app.hasAttribute("data-drawer-open")) setDrawer(app, false);
    else if (grid) setSheet(grid, false);
  });

  function toast(text) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast";
    el.textContent = text;
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, 6000);
  }

  // A whole message's Copy: its markdown source from the server (the page holds only the
  // rendered form) as plain text, and, for a rendered answer, that HTML too, so pasting
  // into a document keeps the formatting and into an editor gives the markdown.
  function copyMessage(btn) {
    if (!navigator.clipboard) { toast("Copying needs a secure (https) page."); return; }
    var msg = btn.closest(".msg");
    var body = msg && (msg.querySelector(".choice.chosen .msg-body") || msg.querySelector(".msg-body"));
    var source = fetch(btn.getAttribute("data-copy-message"), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); });
    var written;
    if (window.ClipboardItem && navigator.clipboard.write && body && body.classList.contains("md")) {
      var parts = {
        "text/plain": source.then(function (t) { return new Blob([t], { type: "text/plain" }); }),
        "text/html": new Blob([body.innerHTML], { type: "text/html" }),
      };
      written = navigator.clipboard.write([new ClipboardItem(parts)]);
    } else {
      written = source.then(function (t) { return navigator.clipboard.writeText(t); });
    }
    written.then(function () {
      var use = btn.querySelector("use");
      btn.setAttribute("data-copied", "");
      if (use) use.setAttribute("href", "#i-check");
      setTimeout(function () {
        btn.removeAttribute("data-copied");
        if (use) use.setAttribute("href", "#i-copy");
      }, 1500);
    }, function (err) { toast("Could not copy: " + (err && err.message ? err.message : err)); });
  }

  // The hot path: a delta frame (`<span id="t-12" hx-swap-oob="beforeend">new text</span>`,
  // ~25 a second per streaming answer) is applied here rather than by htmx, which parsed
  // it and added one more text node each time, after which this script read the layout
  // twice: the browser laid the whole answer out again for every frame, work growing
  // with the answer (at 100 KB, main-thread tasks of 60-160 ms on a busy machine). Here
  // the text goes into segments, one block
  // (<div class="seg">) per line: a segment ends after a newline, so the page looks the
  // same, and only the last one grows and is laid out again. A paragraph longer than
  // SEGMENT is cut at a space too (its line breaks early there until the answer's final
  // render replaces the lot; and while streaming, innerText shows a line break more at
  // each segment). Anything else (snapshots, tool calls, renders) goes through htmx.
  var DELTA = /^<span id="([a-z]\w*-\d+)" hx-swap-oob="beforeend">([^<]*)<\/span>$/;
  var ENTITY = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'" };
  var STRAY_AMP = /&(?!(?:amp|lt|gt|quot|#x27);)/;
  var SEGMENT = 4096;
  function newSegment(target) {
    var seg = document.createElement("div");
    seg.className = "seg";
    seg.appendChild(document.createTextNode(""));
    target.appendChild(seg);
    return seg;
  }
  function isSegment(node) {
    return node.nodeType === Node.ELEMENT_NODE && node.className === "seg";
  }
  function appendText(target, text) {
    var last = target.lastChild;
    if (last && !isSegment(last)) {
      // Text the page or a snapshot put there: it becomes the first segments, so the
      // new text continues its line rather than starting a block of its own.
      if (last.nodeType !== Node.TEXT_NODE) return false;
      var carried = "";
      while (target.lastChild && target.lastChild.nodeType === Node.TEXT_NODE) {
        carried = target.lastChild.data + carried;
        target.lastChild.remove();
      }
      text = carried + text;
    }
    while (text) {
      var seg = target.lastChild;
      if (!seg || !isSegment(seg) || seg.segmentClosed) {
        seg = newSegment(target);
      }
      var node = seg.firstChild;
      var nl = text.indexOf("\n");
      var piece = nl >= 0 ? text.slice(0, nl + 1) : text;
      node.appendData(piece);
      text = text.slice(piece.length);
      if (nl >= 0) {
        seg.segmentClosed = true;
      } else if (node.length > SEGMENT) {
        var cut = node.data.lastIndexOf(" ");
        if (cut > 0) {
          var rest = node.splitText(cut + 1);
          seg.segmentClosed = true;
          newSegment(target).replaceChildren(rest);
        }
      }
    }
  }
  // A chat answer's final (markdown) render drops its leading blank lines; its streaming
  // view ([data-trim-lead]) drops them too, or the text jumps up when the render replaces
  // it. Blanks that may still be leading (no text yet) are held back, not shown.
  // A lone "\r" counts: the markdown split may already have taken the "\n" of its pair.
  var LEADING_BLANK = /^\s*[\r\n]/;
  function trimLead(target, text) {
    if (target.leadDone || !target.hasAttribute("data-trim-lead")) return text;
    if (target.textContent.trim()) { target.leadDone = true; return text; }
    text = (target.heldLead || "").concat(text).replace(LEADING_BLANK, "");
    if (!text.trim()) { target.heldLead = text; return ""; }
    target.heldLead = "";
    target.leadDone = true;
    return text;
  }
  // Text htmx put there (a snapshot after a reconnect or a gap, or a frame this script
  // did not apply) is trimmed the same way once the frame is swapped in.
  function normalizeLead(target) {
    if (target.leadDone) return;
    var all = target.textContent;
    var text = (target.heldLead || "").concat(all).replace(LEADING_BLANK, "");
    if (!text.trim()) {
      target.heldLead = text;
      text = "";
    } else {
      target.heldLead = "";
      target.leadDone = true;
    }
    if (text !== all) target.replaceChildren.apply(target, text ? [document.createTextNode(text)] : []);
  }
  document.addEventListener("htmx:oobBeforeSwap", function (e) {
    var target = e.detail && e.detail.target;
    if (target && target.hasAttribute && target.hasAttribute("data-trim-lead")) {
      target.leadDone = false;
      target.heldLead = "";
    }
  });
  function decode(text) {
    if (STRAY_AMP.test(text)) return null;
    if (text.indexOf("&") >= 0) text = text.replace(/&(?:amp|lt|gt|quot|#x27);/g, function (e) { return ENTITY[e]; });
    return text;
  }
  function applyDelta(frame) {
    var m = typeof frame === "string" && frame.charCodeAt(1) === 115 /* s */ ? DELTA.exec(frame) : null;
    if (!m) return applyBlocks(frame);
    var target = document.getElementById(m[1]);
    var text = decode(m[2]);
    if (!target || text === null) return false;
    text = trimLead(target, text);
    if (!text) return true;
    if (appendText(target, text) === false) return false;
    scheduleScroll();
    return true;
  }

  // Markdown while streaming (see chat/mdstream.py): a chat answer's text goes into its
  // tail (<div class="md-tail">) as above; when blocks complete, the frame ends with
  // <template data-keep="K">: the server's sanitised render of all of the tail but its
  // last K characters (UTF-16 units, as JavaScript counts). With data-refs, each run of
  // text in it is a reference (\ue000<from end>.<length>\ue001) to those characters,
  // which are copied in as text: the text is not sent twice (highlighted code: one
  // reference with its tokens' classes and lengths). With data-open, the HTML ends with
  // an open code fence's empty block, and the tail goes inside it until it closes. With
  // data-plain, the block was too long to lay out at once and stays text, as it is: the
  // tail's nodes become it.
  // A snapshot (hx-swap-oob="innerHTML") carries the whole text and all blocks so far.
  // Rare (once per block), so the block's HTML may be parsed here.
  var BLOCKS = /^<span id="([a-z]\w*-\d+)" hx-swap-oob="(beforeend|innerHTML)">([^<]*)<\/span><template data-keep="(\d+)"( data-refs)?( data-plain)?( data-open)?( data-fill)?>([\s\S]*)<\/template>$/;
  var REF = /\ue000(\d+)\.(\d+)\ue001/g;
  var RUNS = /^\ue002(\d+)\.(\d+):([^\ue003]*)\ue003$/;
  function fillRefs(root, source) {
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT), node, found = [];
    while ((node = walker.nextNode())) if (/[\ue000\ue002]/.test(node.data)) found.push(node);
    found.forEach(function (n) {
      var runs = RUNS.exec(n.data);
      if (!runs) {
        n.data = n.data.replace(REF, function (all, from, size) {
          var start = source.length - Number(from);
          return start < 0 ? "" : source.slice(start, start + Number(size));
        });
        return;
      }
      // Highlighted code: its tokens' classes and lengths; the characters are the tail's.
      var at = Math.max(0, source.length - Number(runs[1])), parts = document.createDocumentFragment();
      runs[3].split(" ").forEach(function (token) {
        var dot = token.lastIndexOf("."), size = Number(token.slice(dot + 1));
        var piece = document.createTextNode(source.slice(at, at + size));
        at += size;
        if (dot > 0) {
          var span = document.createElement("span");
          span.className = token.slice(0, dot);
          span.appendChild(piece);
          piece = span;
        }
        parts.appendChild(piece);
      });
      n.replaceWith(parts);
    });
  }
  function trimEnd(el, count) {
    while (count > 0 && el.lastChild) {
      var last = el.lastChild, node = last.nodeType === Node.TEXT_NODE ? last : last.firstChild;
      if (!node || node.length <= count) { count -= node ? node.length : 0; last.remove(); }
      else { node.deleteData(node.length - count, count); count = 0; }
    }
  }
  function applyBlocks(frame) {
    var m = typeof frame === "string" && frame.charCodeAt(1) === 115 ? BLOCKS.exec(frame) : null;
    if (!m) return false;
    var tail = document.getElementById(m[1]);
    var text = decode(m[3]);
    if (!tail || text === null) return false;
    // The open code fence the tail is shown in, if any.
    var shell = tail.parentElement && tail.parentElement.closest(".code-block");
    if (m[2] === "innerHTML") {
      if (shell) { shell.replaceWith(tail); shell = null; }
      while (tail.previousSibling) tail.previousSibling.remove();
      tail.replaceChildren();
    }
    if (text && appendText(tail, text) === false) return false;
    var full = tail.textContent;
    var keep = Math.min(Number(m[4]), full.length);
    var rest = full.slice(full.length - keep);
    // The line break the render put after the open fence's block stays after it.
    var gap = shell && shell.nextSibling;
    var past = gap && gap.nodeType === Node.TEXT_NODE && !gap.data.trim() ? gap : shell;
    if (m[6]) {
      var fresh = tail.cloneNode(false);
      tail.removeAttribute("id");
      tail.className = "plain";
      trimEnd(tail, keep);
      (past || tail).after(fresh);
      tail = fresh;
    } else {
      var template = document.createElement("template");
      template.innerHTML = m[9];
      if (m[5]) fillRefs(template.content, full.slice(0, full.length - keep));
      if (shell && m[8]) {
        // The fence closed: the tail leaves it, its highlighted code goes in the block
        // already shown, and the blocks after it follow.
        past.after(tail);
        shell.querySelector("code").replaceWith(template.content.firstChild);
        tail.before(template.content);
      } else if (shell) {
        if (past !== shell) past.remove();
        shell.before(template.content);
        shell.replaceWith(tail);  // the fence closed: its render took its place
      } else {
        tail.before(template.content);
      }
      tail.replaceChildren();
    }
    if (rest) appendText(tail, rest);
    if (m[7]) {
      // An open fence: an empty code block, the tail's text growing inside it.
      var code = tail.previousElementSibling && tail.previousElementSibling.querySelector("code");
      if (code) code.appendChild(tail);
    }
    scheduleScroll();
    return true;
  }
  // A frame for an answer this page already shows finished is stale: a snapshot taken as
  // the socket (re)connected, or asked for by "sync", can arrive after the answer's final
  // render replaced its streaming fields. It is dropped (htmx would find no target).
  var FIELD_FRAME = /^<span id="([a-z]\w*-(\d+))" hx-swap-oob="(?:beforeend|innerHTML)">/;
  function staleFrame(frame) {
    var m = typeof frame === "string" ? FIELD_FRAME.exec(frame) : null;
    if (!m || document.getElementById(m[1])) return false;
    var answer = document.getElementById("m-" + m[2]);
    return !!answer && answer.getAttribute("data-status") !== "streaming";
  }
  document.addEventListener("htmx:wsBeforeMessage", function (e) {
    var frame = e.detail && e.detail.message;
    if (applyDelta(frame) || staleFrame(frame)) e.preventDefault();
  });
  document.addEventListener("htmx:wsAfterMessage", function () {
    document.querySelectorAll("[data-trim-lead]").forEach(normalizeLead);
    syncBusy();
    scheduleScroll();
    var composer = document.getElementById("composer");
    if (composer && !composer.hasAttribute("data-pending") && document.activeElement === document.body) {
      var ta = composer.querySelector("textarea");
      if (ta) ta.focus();
    }
    document.querySelectorAll("#toasts .toast:not([data-timed])").forEach(function (toast) {
      toast.setAttribute("data-timed", "");
      setTimeout(function () { toast.remove(); }, 6000);
    });
  });

  // Each socket says whether it is open, on its element (data-socket="open"/"closed"): a
  // capturing listener, so the sidebar socket's own stopPropagation does not hide it. The
  // browser tests wait on it instead of on the clock.
  ["htmx:wsOpen", "htmx:wsClose"].forEach(function (name) {
    document.addEventListener(name, function (e) {
      if (e.target && e.target.setAttribute) {
        e.target.setAttribute("data-socket", name === "htmx:wsOpen" ? "open" : "closed");
      }
    }, true);
  });

  function socketState(text) {
    var el = document.getElementById("socket-state");
    if (el) el.textContent = text;
  }
  document.addEventListener("htmx:wsOpen", function (e) {
    socketState("");
    // Answers this page shows as streaming may have finished before the socket opened
    // (a fast answer, a page restored by Back, a dropped connection): ask for them.
    var ids = [];
    document.querySelectorAll('[data-role="assistant"][data-status="streaming"]').forEach(function (el) {
      var id = parseInt(el.id.replace(/^m-/, ""), 10);
      if (id) ids.push(id);
    });
    if (ids.length && e.detail && e.detail.socketWrapper) {
      e.detail.socketWrapper.send(JSON.stringify({ action: "sync", messages: ids }));
    }
  });
  // A frame past the socket's limit would be refused: say so, keep the text and images.
  document.addEventListener("htmx:wsBeforeSend", function (e) {
    var form = e.target && e.target.closest && e.target.closest("[data-ws-max]");
    var max = form ? parseInt(form.getAttribute("data-ws-max"), 10) : 0;
    var message = e.detail && e.detail.message;
    if (!max || typeof message !== "string" || message.length * 3 <= max) return;
    var size = new Blob([message]).size;
    if (size <= max) return;
    e.preventDefault();
    form.removeAttribute("data-pending");
    var error = form.querySelector("#composer-error");
    if (!error) {
      error = document.createElement("p");
      error.id = "composer-error"; error.className = "field-error"; error.setAttribute("role", "alert");
      form.appendChild(error);
    }
    error.textContent = "Not sent: with its images this message is " + megabytes(size)
      + ", and one message can be at most " + megabytes(max) + ". Remove an image or shorten the text.";
    var text = form.querySelector("textarea");
    if (text) { text.setAttribute("aria-invalid", "true"); text.setAttribute("aria-describedby", "composer-error"); }
  });
  // Why the socket closed (codes from chat/sockets/auth.py and the consumers), and whether the
  // ws extension reconnects by itself (it does only after 1006, 1011, 1012 and 1013).
  var CLOSED = {
    1009: "The last message was too large for the server; reconnecting…",
    4401: "Signed out: this page no longer updates. Reload it to sign in again.",
    4404: "This conversation is gone (deleted, or not yours).",
    4429: "Too many open pages: this one no longer updates. Close some, then reload it."
  };
  document.addEventListener("htmx:wsClose", function (e) {
    var code = e.detail && e.detail.event && e.detail.event.code;
    var again = [1006, 1009, 1011, 1012, 1013].indexOf(code) >= 0;
    socketState(CLOSED[code] || (again ? "Reconnecting…" : "Disconnected. Reload the page to reconnect."));
  });
  document.addEventListener("htmx:wsError", function () { socketState("Connection problem, retrying…"); });

  // Parameter panel: a slider mirrors its number input; blank number = not sent.
  function paramBox(el) { return el.closest && el.closest("[data-param]"); }
  function markUnset(box) {
    var input = box && box.querySelector("[name^='param:']");
    if (box && input) box.classList.toggle("unset", input.value === "");
  }
  document.addEventListener("input", function (e) {
    var t = e.target;
    if (t.matches && t.matches("input[type=range][data-pair]")) {
      var number = document.getElementById(t.getAttribute("data-pair"));
      if (number) { number.value = t.value; markUnset(paramBox(t)); }
    } else if (t.matches && t.matches("[data-param] [name^='param:']")) {
      var box = paramBox(t);
      var range = box.querySelector("input[type=range]");
      if (range && t.value !== "") range.value = t.value;
      markUnset(box);
    }
  });
  document.addEventListener("change", function (e) {
    // A slider has no name (it can't be blank): re-emit its change on the number.
    var t = e.target;
    if (t.matches && t.matches("input[type=range][data-pair]")) {
      var number = document.getElementById(t.getAttribute("data-pair"));
      if (number) number.dispatchEvent(new Event("change", { bubbles: true }));
    }
  });

  // The panel saves 250 ms after a change, but its Lane select replaces it at once, and
  // htmx drops the pending save of a form no longer in the page. So a change not saved yet
  // is saved first (to the lane it was typed for: the form's hidden panel_lane), then the
  // other lane's panel loads.
  document.addEventListener("change", function (e) {
    var form = e.target.form;
    if (form && form.id === "params" && e.target.id !== "panel-lane-select") form.unsaved = true;
  });
  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail && e.detail.elt;
    if (elt && elt.id === "params") elt.unsaved = false;
  });
  document.addEventListener("htmx:confirm", function (e) {
    if (!e.target || e.target.id !== "panel-lane-select") return;
    var form = document.getElementById("params");
    if (!form || !form.unsaved) return;
    e.preventDefault();
    var go = function () { e.detail.issueRequest(true); };
    htmx.ajax("POST", form.getAttribute("hx-post"), { source: form, swap: "none" }).then(go, go);
  });

  // A response can arrive after the element that asked for it was replaced (the panel's
  // autosave, when the Lane select or a preset swapped the panel meanwhile). htmx would
  // then look for its out-of-band parts inside the detached element only, miss those aimed
  // at the rest of the page (the lanes' chips) and log an error. So: what was aimed at the
  // replaced element is dropped, the rest lands in the page as it is now. (Its events no
  // longer bubble to the document, hence a listener on the element itself.)
  document.addEventListener("htmx:beforeRequest", function (e) {
    var target = e.detail && e.detail.target;
    if (!target || target.lateSwapGuard) return;
    target.lateSwapGuard = true;
    target.addEventListener("htmx:beforeSwap", function (ev) {
      if (target.isConnected || ev.target !== target) return;
      ev.detail.shouldSwap = false;
      var stale = target.getRootNode();
      var parts = document.createElement("template");
      parts.innerHTML = ev.detail.serverResponse || "";
      parts.content.querySelectorAll("[hx-swap-oob]").forEach(function (el) {
        var id = el.id && CSS.escape(el.id);
        if (!id || (stale.querySelector && stale.querySelector("#" + id))) el.remove();
      });
      htmx.swap(document.body, parts.innerHTML, { swapStyle: "none" });
    });
  });

  // "Saved" fades by itself (app.css); an edit in the same form clears it at once, as
  // what it said is no longer the whole story. An error ("Not saved…") stays.
  document.addEventListener("input", function (e) {
    var form = e.target && e.target.form;
    if (!form) return;
    form.querySelectorAll(".save-state.saved").forEach(function (badge) {
      badge.classList.remove("saved");
      badge.textContent = "";
    });
  });

  // What the user types while a request is out is theirs: an answer swapped into a
  // [data-keep-typed] target (the Model field after an endpoint is picked, a lane's head)
  // keeps every text field edited since the request left, caret included, instead of
  // overwriting it. The kept value then counts as a change (saved by a lane's head): at
  // once if the field is no longer focused, else when it loses focus.
  var TYPED = "input[id]:not([type=hidden]):not([type=checkbox]):not([type=radio]), textarea[id]";
  var keptTyped = [];
  document.addEventListener("htmx:beforeRequest", function (e) {
    var target = e.detail && e.detail.target;
    if (!target || !target.matches || !target.matches("[data-keep-typed]")) return;
    var sent = {};
    target.querySelectorAll(TYPED).forEach(function (f) { sent[f.id] = f.value; });
    target.typedWhenSent = sent;
  });
  document.addEventListener("htmx:beforeSwap", function (e) {
    var target = e.detail && e.detail.target;
    var sent = target && target.typedWhenSent;
    if (!sent) return;
    target.typedWhenSent = null;
    keptTyped = [];
    focusedUntyped = null;
    target.querySelectorAll(TYPED).forEach(function (f) {
      if (f.id in sent && f.value !== sent[f.id]) {
        keptTyped.push({ id: f.id, value: f.value, start: f.selectionStart, end: f.selectionEnd });
      } else if (f === document.activeElement) {
        focusedUntyped = f.id;
      }
    });
  });
  // The field the user is in but has not typed in yet when its new value arrives: all of
  // the new value is selected, so what they type next replaces it (htmx would put the
  // caret where it was in the old, empty field: typing would then go in front). In the
  // swap's own task (afterSwap, not afterSettle): no keystroke can come in between.
  var focusedUntyped = null;
  document.addEventListener("htmx:afterSwap", function () {
    var id = focusedUntyped;
    focusedUntyped = null;
    var f = id && document.getElementById(id);
    if (f && f === document.activeElement && typeof f.select === "function") f.select();
  });
  document.addEventListener("htmx:afterSwap", function () {
    var kept = keptTyped;
    keptTyped = [];
    kept.forEach(function (k) {
      var f = document.getElementById(k.id);
      if (!f || f.value === k.value) return;
      f.value = k.value;
      f.setAttribute("data-kept-typed", "");
      if (document.activeElement !== f) {
        f.dispatchEvent(new Event("change", { bubbles: true }));
        return;
      }
      try { f.setSelectionRange(k.start, k.end); } catch (err) { /* not a text input */ }
      // A value set by script fires no change on blur unless typed in again.
      var pending = true;
      f.addEventListener("change", function () { pending = false; }, { once: true });
      f.addEventListener("blur", function () {
        if (pending) f.dispatchEvent(new Event("change", { bubbles: true }));
      }, { once: true });
    });
  });

  // Modal: htmx loads a partial into #modal-body; show it as a dialog. Emptied on close
  // so stale content never shows while the next one loads.
  // The close event comes a task after close(): by then the next dialog's content may
  // have arrived and reopened it (a busy machine), and must not be emptied.
  document.addEventListener("close", function (e) {
    if (e.target && e.target.id === "modal" && !e.target.open) {
      var body = document.getElementById("modal-body");
      if (body) body.replaceChildren();
    }
  }, true);
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.target && e.target.id === "modal-body") {
      var dialog = document.getElementById("modal");
      if (dialog && !dialog.open) dialog.showModal();
    }
  });

  // Images: read as data URLs into hidden inputs the socket send includes.
  function megabytes(bytes) { return (bytes / 1048576).toFixed(1).replace(/\.0$/, "") + " MB"; }
  document.addEventListener("change", function (e) {
    var input = e.target;
    if (!input.matches || !input.matches("[data-image-input]")) return;
    var form = input.closest("form");
    var list = form && form.querySelector("[data-attached]");
    var maxImage = parseInt(input.getAttribute("data-image-max"), 10) || 5 * 1048576;
    Array.prototype.forEach.call(input.files || [], function (file) {
      if (file.size > maxImage) {
        var note = document.createElement("span");
        note.className = "field-error";
        note.textContent = file.name + " is " + megabytes(file.size) + "; an image can be at most " + megabytes(maxImage) + ".";
        list.appendChild(note);
        return;
      }
      var reader = new FileReader();
      reader.onload = function () {
        var chip = document.createElement("span");
        chip.className = "chip";
        var img = document.createElement("img");
        img.src = reader.result; img.alt = file.name; img.className = "thumb small";
        var hidden = document.createElement("input");
        hidden.type = "hidden"; hidden.name = "image_data"; hidden.value = reader.result;
        var remove = document.createElement("button");
        remove.type = "button"; remove.className = "chip-x"; remove.textContent = "×";
        remove.setAttribute("aria-label", "Remove " + file.name);
        remove.addEventListener("click", function () { chip.remove(); });
        chip.append(img, hidden, remove);
        list.appendChild(chip);
      };
      reader.readAsDataURL(file);
    });
    input.value = "";
  });

  document.addEventListener("DOMContentLoaded", function () {
    try {
      var grid = document.querySelector(".conv-grid");
      if (grid && localStorage.getItem("playground.panelHidden")) {
        grid.classList.add("panel-hidden");
        var button = document.querySelector("[data-toggle-panel]");
        if (button) button.setAttribute("aria-pressed", "true");
      }
    } catch (err) { /* storage unavailable: the panel stays shown */ }
    openAsked(document.querySelector(".conv-grid[data-open-panel]"));
    syncBusy();
    var el = messages();
    if (el && !showFound(el)) el.scrollTop = el.scrollHeight;
    var ta = document.querySelector("textarea[data-enter-sends]");
    if (ta && !document.querySelector(".field-error") && !(el && el.hasAttribute("data-found"))
        && !document.querySelector(".conv-grid[data-open-panel]")) ta.focus();
  });

  // Chromium can leave an empty style="" on every form field once one is typed into (seen
  // on a page reached by a form post; no script of ours sets a style); htmx copies the old attributes onto a swapped element for its
  // settle step, and setting a style attribute breaks the page's CSP (a console error).
  // An empty style says nothing: drop it before a swap.
  function dropEmptyStyles(target) {
    if (!target || !target.querySelectorAll) return;
    if (target.getAttribute("style") === "") target.removeAttribute("style");
    target.querySelectorAll('[style=""]').forEach(function (el) { el.removeAttribute("style"); });
  }
  document.addEventListener("htmx:oobBeforeSwap", function (e) { dropEmptyStyles(e.detail.target); });
  document.addEventListener("htmx:beforeSwap", function (e) { dropEmptyStyles(e.detail.target); });

  // Opened from the New page's Parameters or Tools button (?open=params|tools): that part
  // of the panel, shown (a sheet on a phone) and focused.
  function openAsked(grid) {
    if (!grid) return;
    var part = document.getElementById(grid.getAttribute("data-open-panel") + "-panel");
    if (!part) return;
    if (NARROW.matches) setSheet(grid, true);
    else if (grid.classList.contains("panel-hidden")) {
      grid.classList.remove("panel-hidden");
      var button = document.querySelector("[data-toggle-panel]");
      if (button) button.setAttribute("aria-pressed", "false");
    }
    part.scrollIntoView({ block: "nearest" });
    var first = part.querySelector("input:not([type=hidden]), select, textarea");
    if (first) first.focus({ preventScroll: true });
  }

  // Opened from a search hit (/c/<id>/?q=words#m-12): that message, not the end, is shown,
  // marked, with the words highlighted (CSS Custom Highlight API: no change to the DOM).
  function showFound(list) {
    var match = /^#m-(\d+)$/.exec(location.hash);
    var target = match && document.getElementById("m-" + match[1]);
    if (!target || !list.contains(target)) return false;
    stickToBottom = false;
    list.setAttribute("data-found", "");
    target.classList.add("found");
    target.scrollIntoView({ block: "center" });
    var words = (new URLSearchParams(location.search).get("q") || "").toLowerCase().split(/\s+/).filter(function (w) { return w.length > 1; });
    if (!words.length || !window.CSS || !CSS.highlights || typeof Highlight === "undefined") return true;
    var ranges = [];
    var walker = document.createTreeWalker(target.querySelector(".msg-body") || target, NodeFilter.SHOW_TEXT);
    for (var node = walker.nextNode(); node; node = walker.nextNode()) {
      var text = node.data.toLowerCase();
      words.forEach(function (word) {
        for (var at = text.indexOf(word); at !== -1; at = text.indexOf(word, at + word.length)) {
          var range = new Range();
          range.setStart(node, at);
          range.setEnd(node, at + word.length);
          ranges.push(range);
        }
      });
    }
    var found = new Highlight();
    ranges.forEach(function (range) { found.add(range); });
    if (ranges.length) CSS.highlights.set("search-hit", found);
    return true;
  }

  // ---- History sidebar, share links, keyboard shortcuts -------------------------------

  // Which key sends: "enter" (default) or "mod" (Ctrl/Cmd+Enter), kept in this browser.
  var SEND_KEY = "playground.sendKey";
  function sendMode() {
    try { return window.localStorage.getItem(SEND_KEY) === "mod" ? "mod" : "enter"; }
    catch (err) { return "enter"; }
  }
  function sendKeyPressed(e) {
    if (e.shiftKey) return false;
    return sendMode() === "mod" ? (e.ctrlKey || e.metaKey) : true;
  }
  // Runs after every swap and socket message: it writes only what differs, so an
  // unchanged page is not invalidated (and laid out again) for nothing.
  function setText(el, text) { if (el.textContent !== text) el.textContent = text; }
  function syncSendKey() {
    var mod = sendMode() === "mod";
    document.querySelectorAll("[data-send-key-toggle]").forEach(function (box) {
      if (box.checked !== mod) box.checked = mod;
    });
    document.querySelectorAll("[data-send-key-label]").forEach(function (el) {
      setText(el, mod ? "Ctrl/⌘+Enter" : "Enter");
    });
    document.querySelectorAll("[data-newline-key-label]").forEach(function (el) {
      setText(el, mod ? "Enter or Shift+Enter" : "Shift+Enter");
    });
    document.querySelectorAll("textarea[data-enter-sends]").forEach(function (ta) {
      if (!ta.hasAttribute("data-placeholder")) ta.setAttribute("data-placeholder", ta.placeholder || "");
      var original = ta.getAttribute("data-placeholder");
      var wanted = mod
        ? original.replace(/\(Enter to (\w+), Shift\+Enter for a new line\)/, "(Ctrl/⌘+Enter to $1, Enter for a new line)")
        : original;
      if (ta.placeholder !== wanted) ta.placeholder = wanted;
      var key = mod ? "mod" : "enter";
      if (ta.getAttribute("data-send-key") !== key) ta.setAttribute("data-send-key", key);
    });
  }
  document.addEventListener("change", function (e) {
    var box = e.target;
    if (!box.matches || !box.matches("[data-send-key-toggle]")) return;
    try { window.localStorage.setItem(SEND_KEY, box.checked ? "mod" : "enter"); } catch (err) { /* private mode */ }
    syncSendKey();
  });

  // Theme: system (no cookie) -> dark -> light -> system. A cookie rather than
  // localStorage so the server renders data-theme on <html> and the first paint is right.
  var THEMES = ["", "dark", "light"];
  document.addEventListener("click", function (e) {
    var btn = e.target.closest && e.target.closest("[data-theme-toggle]");
    if (!btn) return;
    var root = document.documentElement;
    var next = THEMES[(THEMES.indexOf(root.getAttribute("data-theme") || "") + 1) % THEMES.length];
    if (next) root.setAttribute("data-theme", next); else root.removeAttribute("data-theme");
    document.cookie = "playground_theme=" + next + "; path=/; SameSite=Lax; max-age=" + (next ? 31536000 : 0);
    document.querySelectorAll("[data-theme-label]").forEach(function (el) { setText(el, next || "system"); });
  });

  function typingIn(t) {
    return !!t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName || ""));
  }
  function openHelp() {
    var dialog = document.getElementById("help-dialog");
    if (dialog && !dialog.open) { syncSendKey(); dialog.showModal(); }
  }

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.isComposing) return;
    var t = e.target;
    var mod = e.ctrlKey || e.metaKey;
    var key = (e.key || "").toLowerCase();
    if (mod && e.shiftKey && !e.altKey && key === "o") {
      e.preventDefault();
      var link = document.querySelector("[data-new-conversation]");
      window.location.assign(link ? link.href : "/");
      return;
    }
    if (mod && e.shiftKey && !e.altKey && key === "r") {
      // Only when there is something to regenerate; otherwise the browser reloads as usual.
      var buttons = Array.prototype.filter.call(
        document.querySelectorAll("[data-regenerate]"),
        function (b) { return !b.disabled && b.offsetParent !== null; }
      );
      if (buttons.length) { e.preventDefault(); buttons[buttons.length - 1].click(); }
      return;
    }
    if (mod || e.altKey) return;
    if (e.key === "Escape") {
      if (t.matches && t.matches("[data-rename-input]")) {
        var cancel = t.form && t.form.querySelector("[data-rename-cancel]");
        if (cancel) {
          e.preventDefault();
          // A form swapped in a moment ago may not be wired yet: wire it before submitting.
          if (window.htmx) window.htmx.process(t.form);
          cancel.click();
        }
        return;
      }
      // The composer handles its own Esc; elsewhere (not typing, no dialog) Esc stops too.
      if (typingIn(t) || document.querySelector("dialog[open]")) return;
      var stop = document.getElementById("stop-form");
      var bar = composerBar();
      if (stop && bar && bar.hasAttribute("data-busy")) stop.requestSubmit();
      return;
    }
    if (typingIn(t)) return;
    if (e.key === "/") {
      var composer = document.querySelector("textarea[data-enter-sends]");
      if (composer) { e.preventDefault(); composer.focus(); }
      return;
    }
    if (e.key === "?") { e.preventDefault(); openHelp(); }
  });

  document.addEventListener("click", function (e) {
    var t = e.target;
    if (t.closest && t.closest("[data-open-help]")) { openHelp(); return; }
    var copier = t.closest && t.closest("[data-copy-from]");
    if (copier) {
      var field = document.getElementById(copier.getAttribute("data-copy-from"));
      if (field) {
        field.select();
        var done = function () {
          copier.textContent = "Copied";
          setTimeout(function () { copier.textContent = "Copy"; }, 1500);
        };
        if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, function () {});
        else done();
      }
    }
    // A menu closes when the click lands outside it, and a lane menu once an item is
    // picked (Sweep… opens a dialog: the menu should not stay open behind it).
    var picked = t.closest && t.closest("details.lane-menu .menu-item");
    document.querySelectorAll("details.conv-menu[open], details.conv-export-menu[open], details.lane-menu[open]").forEach(function (menu) {
      if (!menu.contains(t) || (picked && menu.contains(picked))) menu.removeAttribute("open");
    });
  });
  document.addEventListener("focusin", function (e) {
    if (e.target.matches && e.target.matches("[data-share-url]")) e.target.select();
  });

  // A rename saved from the sidebar also renames the page's heading when it shows that
  // conversation (the server sends the event in HX-Trigger).
  document.addEventListener("conversationRenamed", function (e) {
    var detail = e.detail || {};
    var conv = document.querySelector('[data-conversation="' + detail.id + '"]');
    var heading = conv && conv.querySelector(".conv-title");
    if (!heading) return;
    var first = heading.firstChild;
    if (first && first.nodeType === Node.TEXT_NODE) first.nodeValue = detail.title;
    else heading.prepend(document.createTextNode(detail.title));
    heading.setAttribute("title", detail.title);
    document.title = detail.title + " · Playground";
  });
  // The heading comes with each new turn (titled by the first question): so does the tab's.
  document.addEventListener("htmx:oobAfterSwap", function (e) {
    var heading = e.target;
    if (heading && heading.id === "conv-title" && heading.isConnected) {
      document.title = heading.getAttribute("title") + " · Playground";
    }
  });
  document.addEventListener("htmx:afterSettle", function (e) {
    var input = e.target && e.target.querySelector && e.target.querySelector("[data-rename-input]");
    if (!input && e.target && e.target.matches && e.target.matches("[data-rename-input]")) input = e.target;
    if (input) { input.focus(); input.select(); }
    syncSendKey();
  });
  document.addEventListener("htmx:wsAfterMessage", syncSendKey);
  document.addEventListener("DOMContentLoaded", syncSendKey);

  // The sidebar's own socket (chat/sockets/sidebar.py) refreshes the history list when another
  // tab changes it. Its events are not the conversation's (busy state, socket status,
  // composer focus), and it leaves the list alone while a search or a rename is typed.
  var sidebarSocket = document.querySelector("[data-sidebar-socket]");
  if (sidebarSocket) {
    ["htmx:wsOpen", "htmx:wsClose", "htmx:wsError", "htmx:wsAfterMessage"].forEach(function (name) {
      sidebarSocket.addEventListener(name, function (e) { e.stopPropagation(); });
    });
    sidebarSocket.addEventListener("htmx:wsBeforeMessage", function (e) {
      e.stopPropagation();
      var q = document.getElementById("conv-search-q");
      var list = document.getElementById("conv-list");
      if ((q && q.value.trim()) || (list && list.querySelector("[data-rename-input]"))) e.preventDefault();
    });
  }
})();
