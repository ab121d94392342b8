"""nbconvert settings of the course's static reveal.js decks, shared by `make slides` and lab/fit_slides.py.

Every script a deck loads comes from slides/lib/ (reveal.js 4.0.2, require.js, jQuery, MathJax 2 and
the widget renderer, unpacked from npm by `make slides`), so a deck opens offline. The slide is
1280 x 720 (16:9, a projector's or a laptop's screen) instead of nbconvert's 960 x 700; reveal.js
scales it to the window, and lab/reveal-offline/fit.css keeps any single cell inside it.
"""

from pathlib import Path

c = get_config()  # noqa: F821 (defined by traitlets when it loads this file)

c.NbConvertApp.export_format = "slides"
c.TemplateExporter.extra_template_basedirs = [str(Path(__file__).resolve().parent)]
c.SlidesExporter.template_name = "reveal-offline"
c.SlidesExporter.reveal_url_prefix = "lib/reveal.js"
c.SlidesExporter.reveal_theme = "white"
c.SlidesExporter.reveal_width = "1280"
c.SlidesExporter.reveal_height = "720"
c.SlidesExporter.require_js_url = "lib/requirejs/require.js"
c.SlidesExporter.jquery_url = "lib/jquery/dist/jquery.min.js"
c.SlidesExporter.mathjax_url = "lib/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"
c.SlidesExporter.widget_renderer_url = "lib/html-manager/dist/embed-amd.js"
