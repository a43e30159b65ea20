"""LLM answers as they really come, each with what a listener should hear.

(answer as the LLM streams it, the words to be spoken: the markup removed; a
heading or list item without final punctuation ends with a period, ``。`` after
CJK, so it is not run into the next line). English, Spanish, French, German,
Chinese and Japanese, with dotted words, URLs, e-mails, numbers, times,
abbreviations, and markdown as LLMs write it.
"""

from __future__ import annotations

ANSWERS: list[tuple[str, str]] = [
    # ------------------------------------------------------------------ English
    (
        "Sure! You can visit example.com for the details. It has a FAQ too.",
        "Sure! You can visit example.com for the details. It has a FAQ too.",
    ),
    (
        "Node.js and Next.js both run on V8. Install Node.js 20.11.1, then run "
        "`npm install`.",
        "Node.js and Next.js both run on V8. Install Node.js 20.11.1, then run "
        "npm install.",
    ),
    (
        "You can reach support at john.doe@example.com or at help@acme.co.uk, "
        "whichever you prefer.",
        "You can reach support at john.doe@example.com or at help@acme.co.uk, "
        "whichever you prefer.",
    ),
    (
        "Open `config.yaml` and set `timeout: 30`. Then restart the service.",
        "Open config.yaml and set timeout: 30. Then restart the service.",
    ),
    (
        "Many languages, e.g. Python and Go, have this. The store opens at 9 a.m. "
        "and closes at 5 p.m. on weekdays.",
        "Many languages, e.g. Python and Go, have this. The store opens at 9 a.m. "
        "and closes at 5 p.m. on weekdays.",
    ),
    (
        "Search it here: https://www.google.com/search?q=a.b and look at the "
        "first result.",
        "Search it here: https://www.google.com/search?q=a.b and look at the "
        "first result.",
    ),
    (
        "Use ```pip install foo``` to install it. Then restart the app. It should "
        "work now.",
        "Use pip install foo to install it. Then restart the app. It should work now.",
    ),
    (
        "See [the docs](https://x.com and more. The install guide is short. "
        "Follow it step by step.",
        "See the docs(https://x.com and more. The install guide is short. "
        "Follow it step by step.",
    ),
    (
        "[Thinking about this, the answer depends on your budget. A used car is "
        "cheaper. A new one lasts longer.",
        "Thinking about this, the answer depends on your budget. A used car is "
        "cheaper. A new one lasts longer.",
    ),
    ("Great job **", "Great job"),
    (
        "**Sure!** Here are the steps:\n\n## Steps\n1. Preheat the oven to 180 °C.\n"
        "2. Mix 200 g of *flour* with 2 eggs.\n3. Bake for 35 minutes 😊\n\n"
        "Enjoy! 🎉",
        "Sure! Here are the steps: Steps. Preheat the oven to 180 °C. Mix 200 g "
        "of flour with 2 eggs. Bake for 35 minutes. Enjoy!",
    ),
    (
        "Here's a quick example:\n\n```python\nimport os\nprint(os.getcwd())\n```\n\n"
        "This prints the current directory. Easy, right?",
        "Here's a quick example: This prints the current directory. Easy, right?",
    ),
    (
        "**Note:** the meeting moved to 10:30 a.m. on Friday. Dr. Smith will "
        "join at 11:15.",
        "Note: the meeting moved to 10:30 a.m. on Friday. Dr. Smith will join "
        "at 11:15.",
    ),
    (
        "The total is $1,234.56, which is about 15% more than last year. That's "
        "roughly 3.5 times the 2019 figure.",
        "The total is $1,234.56, which is about 15% more than last year. That's "
        "roughly 3.5 times the 2019 figure.",
    ),
    (
        "I use ASP.NET Core for the API and Vue.js for the front end. Both work well.",
        "I use ASP.NET Core for the API and Vue.js for the front end. Both work well.",
    ),
    (
        "The U.S. economy grew 2.5% last year. The U.K. grew less, i.e. about 0.1%.",
        "The U.S. economy grew 2.5% last year. The U.K. grew less, i.e. about 0.1%.",
    ),
    (
        "### Pros\n- Fast\n- Cheap\n\n### Cons\n- Noisy\n- Heavy\n\nOverall, "
        "it's a good deal.",
        "Pros. Fast. Cheap. Cons. Noisy. Heavy. Overall, it's a good deal.",
    ),
    (
        "- [x] Book the flight\n- [ ] Reserve the hotel\n- [ ] Rent a car\n\nTwo "
        "tasks are left.",
        "Book the flight. Reserve the hotel. Rent a car. Two tasks are left.",
    ),
    (
        "> The only way to do great work is to love what you do.\n\nThat quote is "
        "from Steve Jobs.",
        "The only way to do great work is to love what you do. That quote is "
        "from Steve Jobs.",
    ),
    (
        "Check out [React's docs](https://react.dev/learn) and ![the logo]"
        "(https://react.dev/logo.svg). They're great!",
        "Check out React's docs and the logo. They're great!",
    ),
    (
        'Run `git commit -m "fix"`, then `git push`. If it fails, try '
        "`git pull --rebase` first.",
        'Run git commit -m "fix", then git push. If it fails, try '
        "git pull --rebase first.",
    ),
    (
        "The file is at /usr/local/etc/nginx/nginx.conf on macOS. On Linux, "
        "check /etc/nginx/nginx.conf.",
        "The file is at /usr/local/etc/nginx/nginx.conf on macOS. On Linux, "
        "check /etc/nginx/nginx.conf.",
    ),
    (
        "Version 3.12.1 fixed it. Upgrade with `python3.12 -m pip install -U mypkg`.",
        "Version 3.12.1 fixed it. Upgrade with python3.12 -m pip install -U mypkg.",
    ),
    (
        "Hmm... that's a tough one. I'd say yes, but it depends!",
        "Hmm. that's a tough one. I'd say yes, but it depends!",
    ),
    (
        "Sure thing 👍 The weather in Paris is 18°C and sunny ☀️. Don't forget "
        "sunscreen!",
        "Sure thing The weather in Paris is 18°C and sunny. Don't forget sunscreen!",
    ),
    (
        'He said, "Stop!" and walked away. Then he came back.',
        'He said, "Stop!" and walked away. Then he came back.',
    ),
    (
        "Call me at +1 (555) 123-4567 or visit www.acme.com/contact. We reply "
        "within 24 hours.",
        "Call me at +1 (555) 123-4567 or visit www.acme.com/contact. We reply "
        "within 24 hours.",
    ),
    (
        "**Step 1:** Open Settings.\n**Step 2:** Tap *Privacy*.\n**Step 3:** "
        "Turn off tracking.",
        "Step 1: Open Settings. Step 2: Tap Privacy. Step 3: Turn off tracking.",
    ),
    (
        "Pi is about 3.14159. The speed of light is 299,792,458 m/s. Neat, huh?",
        "Pi is about 3.14159. The speed of light is 299,792,458 m/s. Neat, huh?",
    ),
    (
        "Your options are:\n\n* Plan A: $9.99/month\n* Plan B: $99/year\n\nMost "
        "people pick Plan B.",
        "Your options are: Plan A: $9.99/month. Plan B: $99/year. Most people "
        "pick Plan B.",
    ),
    (
        "Use the `Array.prototype.map()` method. It returns a new array [1, 2, 3] "
        "mapped by your function.",
        "Use the Array.prototype.map() method. It returns a new array 1, 2, 3 "
        "mapped by your function.",
    ),
    (
        "I think so. However, I'm not 100% sure. Let me know if you want "
        "sources.\n\n---\n\n*Sources available on request.*",
        "I think so. However, I'm not 100% sure. Let me know if you want "
        "sources. Sources available on request.",
    ),
    # ------------------------------------------------------------------ Spanish
    (
        "¡Claro! Puedes visitar www.ejemplo.es para más información. ¿Te ayudo "
        "con algo más?",
        "¡Claro! Puedes visitar www.ejemplo.es para más información. ¿Te ayudo "
        "con algo más?",
    ),
    (
        "**Estos** son los pasos:\n- Primero, abre la app 📱.\n- Después, elige "
        "«Ajustes».\n\n¿Listo? 😊",
        "Estos son los pasos: Primero, abre la app. Después, elige «Ajustes». ¿Listo?",
    ),
    (
        "La reunión es a las 10:30 h. El Sr. García llegará a las 11. Escríbele a "
        "garcia@empresa.es si hay cambios.",
        "La reunión es a las 10:30 h. El Sr. García llegará a las 11. Escríbele a "
        "garcia@empresa.es si hay cambios.",
    ),
    (
        "El precio es de 1.299,99 €, un 20% menos. ¡Es una ganga!",
        "El precio es de 1.299,99 €, un 20% menos. ¡Es una ganga!",
    ),
    (
        "## Resumen\nEl archivo `datos.csv` tiene 3 columnas. Ábrelo con Excel, "
        "Numbers, etc.\n\nSaludos.",
        "Resumen. El archivo datos.csv tiene 3 columnas. Ábrelo con Excel, "
        "Numbers, etc. Saludos.",
    ),
    (
        "Hola. ¿Qué tal? ¡Muy bien! Consulta [la guía](https://ejemplo.es/guia) "
        "cuando puedas.",
        "Hola. ¿Qué tal? ¡Muy bien! Consulta la guía cuando puedas.",
    ),
    (
        "Instala la librería con ```npm i lodash``` y luego impórtala. Es fácil.",
        "Instala la librería con npm i lodash y luego impórtala. Es fácil.",
    ),
    (
        "1. Compra pan.\n2. Compra leche.\n3. Vuelve a casa 🏠\n\n¡Eso es todo!",
        "Compra pan. Compra leche. Vuelve a casa. ¡Eso es todo!",
    ),
    # ------------------------------------------------------------------- French
    (
        "Bien sûr ! Voici l'**essentiel** :\n> « La patience est amère, mais son "
        "fruit est doux. »\n\nC'est de Rousseau.",
        "Bien sûr ! Voici l'essentiel : « La patience est amère, mais son fruit "
        "est doux. » C'est de Rousseau.",
    ),
    (
        "Le rendez-vous est à 14 h 30. M. Dupont sera là. Écrivez à "
        "m.dupont@exemple.fr pour confirmer.",
        "Le rendez-vous est à 14 h 30. M. Dupont sera là. Écrivez à "
        "m.dupont@exemple.fr pour confirmer.",
    ),
    (
        "Lisez l'article [ici](https://fr.exemple.org/a). Il coûte 3,50 €. "
        "Aujourd'hui seulement 👍🏽.",
        "Lisez l'article ici. Il coûte 3,50 €. Aujourd'hui seulement.",
    ),
    (
        "### Étapes\n1. Ouvrez le fichier `index.html`.\n2. Modifiez le titre.\n"
        "3. Enregistrez.\n\nC'est tout !",
        "Étapes. Ouvrez le fichier index.html. Modifiez le titre. Enregistrez. "
        "C'est tout !",
    ),
    (
        "Le site www.service-public.fr explique tout, p. ex. les délais. Bonne "
        "journée !",
        "Le site www.service-public.fr explique tout, p. ex. les délais. Bonne "
        "journée !",
    ),
    (
        "**Attention :** la version 2.0 n'est plus supportée. Passez à la 3.1 "
        "dès que possible.",
        "Attention : la version 2.0 n'est plus supportée. Passez à la 3.1 dès "
        "que possible.",
    ),
    (
        "Vraiment ? Oui ! Le train part à 8 h 05, quai 3. Voici le lien : "
        "[horaires](https://sncf.exemple.fr/h)",
        "Vraiment ? Oui ! Le train part à 8 h 05, quai 3. Voici le lien : horaires",
    ),
    (
        "Pour installer, tapez :\n```bash\npip install requests\n```\nPuis "
        "relancez le script.",
        "Pour installer, tapez : Puis relancez le script.",
    ),
    # ------------------------------------------------------------------- German
    (
        "Gern! Hier die __wichtigsten__ Punkte:\n* Die Straßenbahn fährt um 8 Uhr.\n"
        "* Er sagte: „Halt!“\n\nViel Erfolg! 🍀",
        "Gern! Hier die wichtigsten Punkte: Die Straßenbahn fährt um 8 Uhr. Er "
        "sagte: „Halt!“ Viel Erfolg!",
    ),
    (
        "Das Meeting ist am 12.03.2025 um 14:00 Uhr. Bitte bestätige per E-Mail an "
        "anna.schmidt@firma.de.",
        "Das Meeting ist am 12.03.2025 um 14:00 Uhr. Bitte bestätige per E-Mail an "
        "anna.schmidt@firma.de.",
    ),
    (
        "Das kostet 1.299,00 €, d.h. rund 10% weniger. Z.B. im Online-Shop. "
        "Lohnt sich!",
        "Das kostet 1.299,00 €, d.h. rund 10% weniger. Z.B. im Online-Shop. "
        "Lohnt sich!",
    ),
    (
        "## Anleitung\n1. Öffne die Datei `settings.json`.\n2. Ändere den Wert.\n"
        "3. Speichere sie.\n\nFertig!",
        "Anleitung. Öffne die Datei settings.json. Ändere den Wert. Speichere "
        "sie. Fertig!",
    ),
    (
        "Mehr Infos gibt es auf [der Website](https://www.beispiel.de/info). "
        "Dort steht alles. Viel Spaß! 😊",
        "Mehr Infos gibt es auf der Website. Dort steht alles. Viel Spaß!",
    ),
    (
        "Nutze ```git status``` zum Prüfen. Danach `git add .` und fertig.",
        "Nutze git status zum Prüfen. Danach git add . und fertig.",
    ),
    (
        "Dr. Müller ist ab 9 Uhr da. Herr Weber kommt später, ca. 11 Uhr. Bis dann!",
        "Dr. Müller ist ab 9 Uhr da. Herr Weber kommt später, ca. 11 Uhr. Bis dann!",
    ),
    (
        "**Wichtig:** Das Update auf Version 4.2.1 behebt den Fehler. Es ist "
        "kostenlos **",
        "Wichtig: Das Update auf Version 4.2.1 behebt den Fehler. Es ist kostenlos",
    ),
    # ------------------------------------------------------------------ Chinese
    (
        "好的！**步骤**如下：\n1. 打开应用。\n2. 点击「设置」😊\n更多信息请看"
        "[文档](https://example.cn)。",
        "好的！步骤如下：打开应用。点击「设置」。更多信息请看文档。",
    ),
    (
        "你可以访问 www.example.com 查看详情。如有问题，请发邮件到 "
        "support@example.com。",
        "你可以访问 www.example.com 查看详情。如有问题，请发邮件到 "
        "support@example.com。",
    ),
    (
        "会议定在上午10:30开始，地点是3号会议室。请准时参加！",
        "会议定在上午10:30开始，地点是3号会议室。请准时参加！",
    ),
    (
        "## 总结\n- 价格：99.5元\n- 时间：3天\n\n用 `pip install jieba` 安装分词库。",
        "总结。价格：99.5元。时间：3天。用 pip install jieba 安装分词库。",
    ),
    (
        "我用Python和Node.js开发。代码如下：\n```js\nconsole.log(1)\n```\n很简单吧？",
        "我用Python和Node.js开发。代码如下：很简单吧？",
    ),
    (
        "这个问题很常见。Hello, world!是第一个程序。🎉",
        "这个问题很常见。Hello, world!是第一个程序。",
    ),
    # ----------------------------------------------------------------- Japanese
    (
        "はい、**もちろん**です！\n## 手順\n- アプリを開きます。\n- 「設定」を押します 👍\n"
        "詳しくは[こちら](https://example.jp)をご覧ください。",
        "はい、もちろんです！手順。アプリを開きます。「設定」を押します。"
        "詳しくはこちらをご覧ください。",
    ),
    (
        "会議は10:00からです。資料はwww.example.co.jpにあります。",
        "会議は10:00からです。資料はwww.example.co.jpにあります。",
    ),
    (
        "料金は1,500円です。詳細はinfo@example.jpまでお問い合わせください。",
        "料金は1,500円です。詳細はinfo@example.jpまでお問い合わせください。",
    ),
    (
        "`npm install`を実行してください。その後、サーバーを再起動します。",
        "npm installを実行してください。その後、サーバーを再起動します。",
    ),
    (
        "> 急がば回れ。\n\nこれは日本のことわざです。意味は「遠回りが近道」です。",
        "急がば回れ。これは日本のことわざです。意味は「遠回りが近道」です。",
    ),
    (
        "**注意：**バージョン2.0はサポート終了です。3.1に更新してください！✨",
        "注意：バージョン2.0はサポート終了です。3.1に更新してください！",
    ),
]
